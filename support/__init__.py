"""Support automation around routing (design notes 000 and 002): the answerability gate's
verdict, each category's rollout mode (off, draft, auto), its promotion and guardrail
judged on the feedback journal, and the hand-off answer a request gets when no tier is
called.

The edge plugs it in at one seam (`support.controls.SupportControls`) and renders its
`Handoff` with its own encoders; it knows nothing of the edge, and reads the feedback
journal through a small protocol (`support.ratings.RatingsJournal`), not the shadow store.
"""
