"""Which classes the models can use: data no model can learn from is refused with every class and its count named;
classes below the generator's minimum, or emptied by cleaning, are left out of generation with a warning."""

from __future__ import annotations

import pytest

from synthaug.core.classes import (
    MIN_CLASS_IMAGES,
    ClassSelection,
    balanced_sampling,
    check_trainable,
    load_selection,
    long_tail,
    save_selection,
    select_generated,
)
from synthaug.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("counts", "emptied", "message"),
    [
        ({"coat": 0, "shirt": 0}, (), r"no labeled train images.*'coat': 0, 'shirt': 0.*land labeled images"),
        ({}, ("bag",), r"no labeled train images.*cleaning removed every image of \['bag'\]"),
        ({"coat": 40}, (), r"at least 2 classes with 2 or more.*have 1 \(\['coat'\]\).*'coat': 40.*Land more images"),
        ({"coat": 40, "shirt": 1}, (), r"have 1 \(\['coat'\]\); train images per class: 'coat': 40, 'shirt': 1"),
    ],
)
def test_data_no_model_can_learn_from_is_refused_naming_each_class(counts, emptied, message):
    with pytest.raises(InvalidInput, match=message):
        check_trainable(counts, emptied)


def test_two_classes_of_two_images_are_trainable():
    check_trainable({"coat": 2, "shirt": 2, "bag": 0})


def test_small_and_emptied_classes_are_left_out_of_generation_with_a_warning():
    selection = select_generated({"coat": 40, "shirt": 30, "sandal": 1, "bag": 0}, emptied=("boot",))
    assert selection.min_class_images == MIN_CLASS_IMAGES
    assert selection.generated == ["coat", "shirt"]
    assert selection.excluded == {"sandal": 1, "bag": 0, "boot": 0}
    warning = selection.warning()
    assert "'sandal' (1 train image)" in warning and "'bag' (0 train images)" in warning
    assert "'boot' (0 train images, every image removed by cleaning)" in warning
    assert f"minimum of {MIN_CLASS_IMAGES} train images" in warning and "min_class_images" in warning
    assert select_generated({"coat": 40, "shirt": 30}).warning() is None


def test_the_threshold_is_a_setting_with_a_floor():
    assert select_generated({"coat": 40, "shirt": 3}, min_class_images=3).excluded == {}
    assert select_generated({"coat": 40, "shirt": 3}, min_class_images=4).excluded == {"shirt": 3}
    with pytest.raises(InvalidInput, match="min_class_images must be at least 2, got 1"):
        select_generated({"coat": 40, "shirt": 3}, min_class_images=1)


def test_a_tiny_data_set_is_generated_anyway_with_a_warning_instead_of_an_empty_set():
    selection = select_generated({"coat": 5, "shirt": 3, "sandal": 1})
    assert selection.all_small and selection.generated == ["coat", "shirt"]
    assert selection.excluded == {"sandal": 1}
    warning = selection.warning()
    assert warning.startswith("every class has fewer than the generator's minimum of 10 train images")
    assert "'sandal' (1 train image) are below the generator's minimum of 2" in warning
    assert "min_class_images" not in warning.split("; ")[1]


def test_the_selection_round_trips_beside_the_checkpoints(tmp_path):
    assert load_selection(tmp_path) is None
    selection = select_generated({"coat": 40, "shirt": 30, "sandal": 1}, emptied=("boot",))
    save_selection(tmp_path, selection)
    assert load_selection(tmp_path) == selection
    assert isinstance(load_selection(tmp_path), ClassSelection)


def test_a_split_is_long_tailed_when_a_present_class_has_a_third_or_less_of_the_largest():
    assert long_tail([30, 5, 10, 0]) == [1, 2]  # an empty class is not rare: it is not generated at all
    assert long_tail([30, 11, 30]) == [] and long_tail([]) == []


def test_class_balance_auto_balances_only_a_long_tailed_split_and_on_off_are_unconditional():
    assert balanced_sampling("auto", [500, 25]) and not balanced_sampling("auto", [100, 90])
    assert balanced_sampling("on", [100, 90]) and not balanced_sampling("off", [500, 25])
    with pytest.raises(InvalidInput, match="class_balance must be one of"):
        balanced_sampling("sometimes", [1, 1])
