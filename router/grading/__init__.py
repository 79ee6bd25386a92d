"""Graders: score answers in [0, 1] for `router grade`, and for the shadow flywheel.

Every grader takes a batch of `GradeItem`s (prompt, answer, optional reference) and gives
one score or None per item; None means "could not grade", never a silent 0 or 1, and each
grader counts why. Graders know nothing of files: the flywheel can grade a shadow pair as
GradeItem(prompt, answer=shadow_text, reference=primary_text) with any of them.

    protocol.py    the seam: GradeItem, PairItem, Grader, PairGrader
    reference.py   against a reference: choice letter, final number, exact, semantic, auto
    similarity.py  semantic similarity: MiniLM cosine or a cross-encoder
    judge.py       LLM-as-judge over an OpenAI-compatible endpoint; pairwise in both orders
    verdicts.py    reading a judge's reply: a score on a scale, or A / B / tie
    human.py       labels from a reviewed `gateway shadow sample` sheet
    answers.py     reading the answers file `router collect` writes
    batch.py       a grader over a whole answers table
    outcomes.py    writing the outcomes file `router train` reads
    report.py      pass rates per target and category, two graders' agreement (kappa)
"""
