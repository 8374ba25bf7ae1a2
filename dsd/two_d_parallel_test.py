"""2-D layouts on 2x2 meshes (FSDP2+TP, HSDP): state dicts against a reference, and DCP
checkpoints between every 1-D and 2-D layout."""

from absl.testing import parameterized

from dsd import layout_checks
from testing import parallelisms

LAYOUTS = ("tp", "fsdp2") + parallelisms.LAYOUTS_2D


class TwoDimensionalTest(layout_checks.LayoutChecks):

    @parameterized.named_parameters(*layout_checks.kinds(parallelisms.LAYOUTS_2D))
    def test_state_dict_matches_reference(self, layout, full):
        self.check_state_dict_matches_reference(layout, full)

    @parameterized.named_parameters(*layout_checks.pairs(LAYOUTS, parallelisms.LAYOUTS_2D))
    def test_save_on_one_layout_load_on_another(self, save_layout, load_layout):
        self.check_save_on_one_layout_load_on_another(save_layout, load_layout)
