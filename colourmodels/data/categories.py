"""The paper's six scene categories and the concept -> category mapping.

The paper (method section 1) groups MIRFLICKR-25000 images into six categories,
:data:`CATEGORIES` = animals, city, nature, people, scenery, others, but does not say
how the data set's 24 concepts map onto them. The platform keeps that rule as data, a
:class:`CategoryMapping`: an *ordered* list of ``(category, concepts)`` rules. An image
gets the category of the **first** rule (in priority order) that lists any of its
concepts; an image none of the rules matches gets the mapping's ``default``
(``"others"``).

:data:`DEFAULT_MAPPING`, in priority order:

==========  ===========================================================
people      people, portrait, male, female, baby
animals     animals, dog, bird
city        structures, transport, car
nature      plant_life, flower, tree
scenery     sky, clouds, sea, lake, river, water, sunset, night
others      everything else (food, indoor, and images with no concept)
==========  ===========================================================

Why this order: the most specific *subject* wins. Most photographs carry several
concepts, and the broad, background-like ones come with almost every outdoor picture
(sky, clouds, water, tree, plant_life). A photo of a person on a beach is tagged
people + sea + sky, and is a picture *of* a person; a dog in a park (dog + tree) is an
animal picture; a car in a street under a cloudy sky (car + structures + clouds) is a
city picture. So the rules run from the narrowest subject (people, whose skin tones a
colouriser most needs to get right, then animals) through man-made scenes (city) and
vegetation (nature) to the broadest, background-only category (scenery).

A mapping round-trips through JSON (:meth:`CategoryMapping.to_json`,
:meth:`CategoryMapping.from_json`)::

    {"default": "others",
     "rules": [{"category": "people", "concepts": ["people", "portrait", ...]}, ...]}

and is validated on construction: a category outside :data:`CATEGORIES`, a category
with two rules, or a concept listed twice (in one rule or in two) is a ``ValueError``
that names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CATEGORIES",
    "DEFAULT_MAPPING",
    "OTHERS",
    "CategoryMapping",
]

#: The paper's six categories, in the paper's order (also the classifier's index order).
CATEGORIES: tuple[str, ...] = ("animals", "city", "nature", "people", "scenery", "others")

#: The category of images that no rule matches.
OTHERS = "others"


def _clean_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


@dataclass(frozen=True)
class CategoryMapping:
    """Concept -> category rules in priority order (see the module docstring).

    ``rules``: ``(category, concepts)`` pairs, first match wins. ``default``: the
    category of images that no rule matches. Concept names are compared exactly (the
    MIRFLICKR annotation file names are lower case, e.g. ``plant_life``).
    """

    rules: tuple[tuple[str, tuple[str, ...]], ...]
    default: str = OTHERS
    _lookup: dict[str, tuple[int, str]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __init__(
        self,
        rules: Iterable[tuple[str, Iterable[str]]] | Mapping[str, Iterable[str]],
        default: str = OTHERS,
    ) -> None:
        items = rules.items() if isinstance(rules, Mapping) else rules
        cleaned: list[tuple[str, tuple[str, ...]]] = []
        for item in items:
            try:
                category, concepts = item
            except (TypeError, ValueError):
                raise ValueError(f"a rule must be (category, concepts), got {item!r}") from None
            if isinstance(concepts, str):
                raise ValueError(
                    f"concepts of category {category!r} must be a list of names, "
                    f"not the string {concepts!r}"
                )
            cleaned.append(
                (
                    _clean_name(category, "a category name"),
                    tuple(_clean_name(c, f"a concept of {category!r}") for c in concepts),
                )
            )
        default = _clean_name(default, "the default category")

        lookup: dict[str, tuple[int, str]] = {}
        seen: set[str] = set()
        for rank, (category, concepts) in enumerate(cleaned):
            if category not in CATEGORIES:
                raise ValueError(
                    f"unknown category {category!r} (the categories are {', '.join(CATEGORIES)})"
                )
            if category in seen:
                raise ValueError(f"category {category!r} has more than one rule")
            seen.add(category)
            for concept in concepts:
                if concept in lookup:
                    first = lookup[concept][1]
                    where = (
                        f"twice under {category!r}"
                        if first == category
                        else f"under both {first!r} and {category!r}"
                    )
                    raise ValueError(f"concept {concept!r} is listed {where}")
                lookup[concept] = (rank, category)
        if default not in CATEGORIES:
            raise ValueError(
                f"unknown default category {default!r} (the categories are {', '.join(CATEGORIES)})"
            )
        object.__setattr__(self, "rules", tuple(cleaned))
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "_lookup", lookup)

    # ------------------------------------------------------------------ queries

    @property
    def priority(self) -> tuple[str, ...]:
        """The categories with rules, highest priority first."""
        return tuple(category for category, _ in self.rules)

    @property
    def concepts(self) -> frozenset[str]:
        """Every concept that some rule names."""
        return frozenset(self._lookup)

    def category_of_concept(self, concept: str) -> str | None:
        """The rule's category for one concept, ``None`` if no rule names it."""
        hit = self._lookup.get(concept)
        return None if hit is None else hit[1]

    def category_of(self, concepts: Iterable[str]) -> str:
        """The category of an image tagged with ``concepts``: the highest-priority rule
        naming any of them, else :attr:`default`."""
        best: tuple[int, str] | None = None
        for concept in concepts:
            hit = self._lookup.get(concept)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        return self.default if best is None else best[1]

    # ---------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, object]:
        return {
            "default": self.default,
            "rules": [
                {"category": category, "concepts": list(concepts)}
                for category, concepts in self.rules
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CategoryMapping:
        if not isinstance(data, Mapping):
            raise ValueError(f"a category mapping must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"default", "rules"}
        if unknown:
            raise ValueError(
                "unknown key(s) in category mapping: " + ", ".join(repr(k) for k in sorted(unknown))
            )
        rules = data.get("rules")
        if not isinstance(rules, Sequence) or isinstance(rules, str):
            raise ValueError("a category mapping needs 'rules': a list of {category, concepts}")
        pairs: list[tuple[str, Iterable[str]]] = []
        for i, rule in enumerate(rules):
            if not isinstance(rule, Mapping) or set(rule) != {"category", "concepts"}:
                raise ValueError(
                    f"rule {i} must be an object with exactly 'category' and 'concepts', "
                    f"got {rule!r}"
                )
            pairs.append((rule["category"], rule["concepts"]))  # type: ignore[arg-type]
        default = data.get("default", OTHERS)
        return cls(pairs, default=default)  # type: ignore[arg-type]

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> CategoryMapping:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"category mapping is not valid JSON: {exc}") from None
        return cls.from_dict(data)


#: The platform's default rule (method section 1), in priority order.
DEFAULT_MAPPING = CategoryMapping(
    [
        ("people", ("people", "portrait", "male", "female", "baby")),
        ("animals", ("animals", "dog", "bird")),
        ("city", ("structures", "transport", "car")),
        ("nature", ("plant_life", "flower", "tree")),
        ("scenery", ("sky", "clouds", "sea", "lake", "river", "water", "sunset", "night")),
    ],
    default=OTHERS,
)
