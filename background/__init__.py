"""Background work shared by every layer above: a step run periodically (`periodic`), a
bounded queue of fire-and-forget jobs (`workers`), and how their failures are counted and
logged without flooding the log (`failures`). Nothing here knows what the work is."""
