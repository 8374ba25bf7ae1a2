"""ParallelDims without processes: degrees resolved and checked, and the mesh each layout asks for."""

from absl.testing import absltest
from absl.testing import parameterized

from testing.parallelisms import LAYOUTS
from testing.parallelisms import ParallelDims


class ParallelDimsTest(parameterized.TestCase):

    @parameterized.named_parameters(
        ("fsdp", ParallelDims(), 4, ParallelDims(dp_shard=4)),
        ("fsdp_tp", ParallelDims(tp=2), 8, ParallelDims(dp_shard=4, tp=2)),
        ("hsdp", ParallelDims(dp_replicate=-1, dp_shard=2), 4, ParallelDims(dp_replicate=2, dp_shard=2)),
        ("pp_ep", ParallelDims(pp=2, ep=2), 8, ParallelDims(dp_shard=4, pp=2, ep=2)),
        ("all_fixed", ParallelDims(dp_shard=2, cp=2), 4, ParallelDims(dp_shard=2, cp=2)),
    )
    def test_resolved(self, dims, world_size, expected):
        self.assertEqual(dims.resolved(world_size), expected)
        self.assertEqual(expected.world_size, world_size)

    @parameterized.named_parameters(
        ("not_dividing", ParallelDims(tp=3), 4, "does not divide into 4 ranks"),
        ("fixed_mismatch", ParallelDims(dp_shard=2, tp=2), 8, "does not divide into 8 ranks"),
        ("two_free", ParallelDims(dp_replicate=-1), 4, "at most one is -1"),
        ("zero", ParallelDims(tp=0), 4, "degrees are >= 1"),
        ("ep_not_dividing", ParallelDims(dp_shard=2, tp=2, ep=4), 4, "ep=4 must divide dp_shard x cp"),
    )
    def test_rejected(self, dims, world_size, why):
        with self.assertRaisesRegex(ValueError, why):
            dims.resolved(world_size)

    def test_mesh_dims_outermost_first_and_kept(self):
        dims = ParallelDims(dp_replicate=2, dp_shard=2, cp=2, tp=2, pp=2)
        self.assertEqual([d for d, _ in dims.mesh_dims()], ["pp", "dp_replicate", "dp_shard", "cp", "tp"])
        self.assertEqual(ParallelDims(dp_shard=1, tp=1).mesh_dims(keep=("tp",)), [("tp", 1)])
        self.assertEqual(ParallelDims(dp_shard=1).mesh_dims(), [("dp_shard", 1)])

    @parameterized.parameters(
        ("fsdp2", 2, [("dp_shard", 2)]),
        ("tp", 2, [("tp", 2)]),
        ("fsdp2_tp", 2, [("dp_shard", 1), ("tp", 2)]),
        ("fsdp2_tp", 4, [("dp_shard", 2), ("tp", 2)]),
        ("hsdp", 4, [("dp_replicate", 2), ("dp_shard", 2)]),
    )
    def test_layout_meshes(self, layout, world_size, expected):
        dims = LAYOUTS[layout].dims
        self.assertEqual(dims.resolved(world_size).mesh_dims(keep=dims.named()), expected)


if __name__ == "__main__":
    absltest.main()
