"""Writes of the perceptual study (method.md §7), one module per concern: :mod:`.studies`
(create, change, open, close), :mod:`.stimuli` (their preparation), :mod:`.assignment`
(what a participant is shown, at start), :mod:`.trials` (answers), :mod:`.withdrawal`;
:mod:`.errors` holds the exceptions they raise."""
