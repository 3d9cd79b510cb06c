"""What the study services raise; the message says what went wrong."""


class StudyError(Exception):
    """Something about the study prevents the action; the message says what."""


class StudyNotOpen(StudyError):
    pass


class StudyFull(StudyError):
    pass


class NotEnoughScenes(StudyError):
    pass


class ParticipationError(StudyError):
    """The participant cannot (any more) take part: withdrawn, completed, unknown."""


class TrialError(StudyError):
    """An answer that cannot be stored: no such trial, out of order, bad value."""
