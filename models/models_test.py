"""The fixtures' shapes, determinism and state-dict key contracts (single process)."""

import torch
from absl.testing import absltest
from absl.testing import parameterized

from models import dummy_models
from models import fusion_embedding
from models import tied_weights
from models import world_size_scaled


class DummyModelsTest(parameterized.TestCase):

    @parameterized.named_parameters(
        ("even", True, [(16, 8), (32, 16), (64, 32), (8, 64)]),
        ("uneven", False, [(10, 5), (15, 10), (30, 15), (5, 30)]),
    )
    def test_layer_shapes(self, even, shapes):
        model = dummy_models.dummy_model(even)
        weights = [p.shape for n, p in model.named_parameters() if n.endswith("weight")]
        self.assertEqual([tuple(s) for s in weights], shapes)
        self.assertEqual(model(model.get_input()).shape[0], model.get_input().shape[0])

    @parameterized.parameters(True, False)
    def test_deterministic_and_leaves_global_rng_alone(self, even):
        torch.manual_seed(123)
        before = torch.rand(1)
        torch.manual_seed(123)
        a, b = dummy_models.dummy_model(even), dummy_models.dummy_model(even)
        self.assertTrue(torch.equal(torch.rand(1), before), "global RNG untouched")
        for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            self.assertTrue(torch.equal(p, q), n)
        c = dummy_models.dummy_model(even, seed=1)
        self.assertFalse(torch.equal(a.net1[0].weight, c.net1[0].weight))


class WorldSizeScaledTest(parameterized.TestCase):

    @parameterized.parameters(1, 2, 4)
    def test_widths_are_multiples_of_world_size(self, world_size):
        model = world_size_scaled.WorldSizeScaledModel(world_size)
        widths = [p.shape[0] for n, p in model.named_parameters() if n.endswith("weight")]
        self.assertEqual(widths, [world_size, 2 * world_size, 3 * world_size])
        self.assertEqual(model(model.get_input()).shape, (8, 3 * world_size))


class FusionEmbeddingTest(parameterized.TestCase):

    @parameterized.named_parameters(
        ("plain", "plain", {"tok.embedding.weight", "tok.fusion_embedding.weight"}),
        ("hook", "hook", {"tok.weight", "tok.fusion_embedding.weight"}),
        ("modifier", "modifier", {"tok.weight", "tok.fusion_embedding.weight"}),
    )
    def test_state_dict_keys_and_round_trip(self, variant, tok_keys):
        model = fusion_embedding.EmbeddingModel(variant)
        sd = model.state_dict()
        self.assertEqual({k for k in sd if k.startswith("tok.")}, tok_keys)
        other = fusion_embedding.EmbeddingModel(variant, seed=1)
        other.load_state_dict(sd)
        self.assertTrue(torch.equal(other.tok.embedding.weight, model.tok.embedding.weight))
        ids = model.get_input()
        self.assertTrue(torch.equal(other(ids), model(ids)))

    def test_only_modifier_variant_declares_fqn_modifiers(self):
        self.assertEqual(fusion_embedding.EmbeddingModel("modifier").tok._fqn_modifiers(), {"weight": "embedding"})
        self.assertFalse(hasattr(fusion_embedding.EmbeddingModel("hook").tok, "_fqn_modifiers"))

    def test_fusion_ids_use_the_fusion_table(self):
        tok = fusion_embedding.EmbeddingModel().tok
        ids = torch.tensor([[0, tok.vocab_size]])
        out = tok(ids)
        self.assertTrue(torch.equal(out[0, 0], tok.embedding.weight[0]))
        self.assertTrue(torch.equal(out[0, 1], tok.fusion_embedding.weight[0]))


class TiedWeightsTest(absltest.TestCase):

    def test_head_shares_the_embedding_weight(self):
        model = tied_weights.TiedEmbeddingModel()
        self.assertIs(model.lm_head.weight, model.embed.weight)
        self.assertEqual(len(list(model.parameters())), 3, "the tied weight counts once")
        self.assertIn("lm_head.weight", model.state_dict())
        self.assertEqual(model(model.get_input()).shape, (4, 5, model.vocab_size))


if __name__ == "__main__":
    absltest.main()
