"""Curricula (layer 5): domain randomisation now; PLR and GROOVE plug in here."""

from .base import AbstractCurriculum as AbstractCurriculum
from .base import DomainRandomisation as DomainRandomisation
from .base import stagger_lifetimes as stagger_lifetimes
