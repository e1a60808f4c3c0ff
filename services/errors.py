"""What a domain operation can refuse, whatever channel asked for it."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the domain refuses; the message can be shown to whoever asked."""


class InvalidModel(ServiceError):
    """Weights or class names that cannot make a model version."""


class UnknownVersion(ServiceError, LookupError):
    """No model version with that id, or no version carries that alias."""


class NothingToRollBack(ServiceError):
    """The alias has no earlier version to go back to."""


class NoRegistry(ServiceError):
    """The database has no model registry yet: it was never migrated."""


class InvalidClasses(InvalidModel):
    """Class names that are empty or repeated."""


class UnknownDoodle(ServiceError, LookupError):
    """No recognition has this id."""


class ReviewRefused(ServiceError):
    """The doodle is in a state that forbids this review decision."""


class ArtifactDeleted(UnknownVersion):
    """The version is registered but its weights were deleted (trained on erased doodles)."""


class NoCleanAncestor(ServiceError):
    """Every version in production's lineage was trained on erased doodles."""


class UnknownPlayer(ServiceError, LookupError):
    """No player has this id (or the player was erased)."""


class InvalidConsent(ServiceError):
    """A consent grant that cannot be: training without storing, or no text version."""


class UnknownErasure(ServiceError, LookupError):
    """No erasure request has this id."""
