"""The six categories and the configurable concept -> category mapping."""

from __future__ import annotations

import json

import pytest

from colourmodels.data.categories import CATEGORIES, DEFAULT_MAPPING, OTHERS, CategoryMapping
from colourmodels.data.mirflickr import MIRFLICKR_CONCEPTS


def test_six_categories_in_the_papers_order():
    assert CATEGORIES == ("animals", "city", "nature", "people", "scenery", "others")
    assert OTHERS == "others"


def test_default_mapping_is_the_method_rule():
    assert DEFAULT_MAPPING.priority == ("people", "animals", "city", "nature", "scenery")
    assert DEFAULT_MAPPING.default == "others"
    expected = {
        "people": {"people", "portrait", "male", "female", "baby"},
        "animals": {"animals", "dog", "bird"},
        "city": {"structures", "transport", "car"},
        "nature": {"plant_life", "flower", "tree"},
        "scenery": {"sky", "clouds", "sea", "lake", "river", "water", "sunset", "night"},
    }
    assert {c: set(concepts) for c, concepts in DEFAULT_MAPPING.rules} == expected
    # every concept it names is a real MIRFLICKR concept; food and indoor go to "others"
    assert DEFAULT_MAPPING.concepts <= set(MIRFLICKR_CONCEPTS)
    assert set(MIRFLICKR_CONCEPTS) - DEFAULT_MAPPING.concepts == {"food", "indoor"}


@pytest.mark.parametrize(
    ("concepts", "category"),
    [
        (["dog", "people"], "people"),  # priority: the person wins over the dog
        (["people", "dog"], "people"),  # order of the tags does not matter
        (["dog", "tree", "sky"], "animals"),
        (["car", "clouds", "structures"], "city"),
        (["flower", "sky"], "nature"),
        (["sea", "sunset"], "scenery"),
        (["food", "indoor"], "others"),
        ([], "others"),
        (["unknown_concept"], "others"),
    ],
)
def test_first_matching_rule_wins(concepts, category):
    assert DEFAULT_MAPPING.category_of(concepts) == category


def test_priority_is_configurable():
    animals_first = CategoryMapping(
        [("animals", ["dog"]), ("people", ["people"])], default="scenery"
    )
    assert animals_first.category_of(["people", "dog"]) == "animals"
    assert animals_first.category_of(["sky"]) == "scenery"
    assert animals_first.category_of_concept("people") == "people"
    assert animals_first.category_of_concept("sky") is None


def test_json_round_trip():
    text = DEFAULT_MAPPING.to_json()
    data = json.loads(text)
    assert data["default"] == "others"
    assert [r["category"] for r in data["rules"]] == list(DEFAULT_MAPPING.priority)
    again = CategoryMapping.from_json(text)
    assert again == DEFAULT_MAPPING
    assert again.rules == DEFAULT_MAPPING.rules
    custom = CategoryMapping.from_json(
        '{"rules": [{"category": "nature", "concepts": ["tree", "flower"]}]}'
    )
    assert custom.default == "others" and custom.category_of(["flower"]) == "nature"


@pytest.mark.parametrize(
    ("rules", "needle"),
    [
        ([("cats", ["dog"])], "'cats'"),
        ([("city", ["car", "car"])], "'car'"),
        ([("city", ["car"]), ("nature", ["tree", "car"])], "'car'"),
        ([("city", ["car"]), ("city", ["bus"])], "'city'"),
        ([("city", "car")], "'city'"),
        ([("city", [""])], "concept"),
    ],
)
def test_invalid_mappings_name_the_culprit(rules, needle):
    with pytest.raises(ValueError, match=needle):
        CategoryMapping(rules)


def test_invalid_default_and_json():
    with pytest.raises(ValueError, match="'misc'"):
        CategoryMapping([], default="misc")
    with pytest.raises(ValueError, match="not valid JSON"):
        CategoryMapping.from_json("{rules:")
    with pytest.raises(ValueError, match="'colour'"):
        CategoryMapping.from_json('{"rules": [], "colour": 1}')
    with pytest.raises(ValueError, match="rule 0"):
        CategoryMapping.from_json('{"rules": [{"category": "city"}]}')
    with pytest.raises(ValueError, match="'Dogs'"):
        CategoryMapping.from_json('{"rules": [{"category": "Dogs", "concepts": ["dog"]}]}')
