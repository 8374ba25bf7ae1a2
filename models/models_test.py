"""The fixtures' shapes, determinism and state-dict key contracts (single process)."""

import torch
from absl.testing import absltest
from absl.testing import parameterized

from models import dummy_models
from models import fusion_embedding
from models import tied_weights
from models import transformer
from models import world_size_scaled
from testing import parallelisms


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


class TransformerTest(absltest.TestCase):

    def test_state_dict_keys(self):
        keys = set(transformer.Transformer().state_dict())
        block = {"attention_norm.weight", "attention.wq.weight", "attention.wk.weight", "attention.wv.weight",
                 "attention.wo.weight", "ffn_norm.weight", "feed_forward.w1.weight", "feed_forward.w2.weight",
                 "feed_forward.w3.weight"}
        expected = {f"layers.{i}.{k}" for i in range(2) for k in block} | {
            "tok_embeddings.weight", "output.weight", "norm.weight", "norm.bias", "softcap._extra_state"}
        self.assertEqual(keys, expected, "non-persistent rope buffers are not in the state dict")
        self.assertEqual({n for n, _ in transformer.Transformer().named_buffers()}, {"rope.cos", "rope.sin"})

    def test_output_head_is_tied_to_the_embedding(self):
        model = transformer.Transformer()
        self.assertIs(model.output.weight, model.tok_embeddings.weight)
        self.assertNotIn("output.weight", dict(model.named_parameters()), "the tied weight counts once")

    def test_deterministic_and_leaves_global_rng_alone(self):
        torch.manual_seed(123)
        before = torch.rand(1)
        torch.manual_seed(123)
        a, b, c = transformer.Transformer(0), transformer.Transformer(0), transformer.Transformer(1)
        self.assertTrue(torch.equal(torch.rand(1), before), "global RNG untouched")
        for (n, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
            self.assertTrue(torch.equal(p, q), n)
            self.assertFalse(torch.equal(p, r), f"{n}: seed 1 gives other values")
        tokens = a.get_input()
        self.assertEqual(a(tokens).shape, (2, 8, 64))
        self.assertTrue(torch.equal(a(tokens), b(tokens)))

    def test_extra_state_round_trips_and_changes_the_output(self):
        source, target = transformer.Transformer(), transformer.Transformer()
        source.softcap.cap = 0.5
        tokens = source.get_input()
        self.assertFalse(torch.allclose(source(tokens), target(tokens)), "the cap changes the logits")
        self.assertEqual(source.state_dict()["softcap._extra_state"], {"cap": 0.5})
        target.load_state_dict(source.state_dict())
        self.assertEqual(target.softcap.cap, 0.5)
        self.assertTrue(torch.equal(source(tokens), target(tokens)))

    def test_meta_device_model_materialises_with_init_buffers(self):
        reference = transformer.Transformer()
        with torch.device("meta"):
            model = transformer.Transformer()
        self.assertTrue(model.rope.cos.is_meta)
        model.to_empty(device="cpu")
        model.tie_weights()
        model.init_buffers()
        self.assertIs(model.output.weight, model.tok_embeddings.weight)
        self.assertTrue(torch.equal(model.rope.cos, reference.rope.cos))
        self.assertTrue(torch.equal(model.rope.sin, reference.rope.sin))
        model.load_state_dict(reference.state_dict())
        tokens = reference.get_input()
        self.assertTrue(torch.equal(model(tokens), reference(tokens)))

    def test_training_steps_change_every_parameter(self):
        model = transformer.Transformer()
        before = {n: p.clone() for n, p in model.named_parameters()}
        optim = transformer.adamw(model.parameters())
        scheduler = transformer.cosine_warmup(optim)
        parallelisms.train(model, optim, transformer.batches(model.config, "cpu", 2), transformer.next_token_loss,
                           scheduler)
        unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
        self.assertEqual(unchanged, [])
        self.assertEqual(scheduler.last_epoch, 2)
        self.assertEqual(optim.param_groups[0]["initial_lr"], 0.01)

    def test_wrappers_prefix_parameter_names_not_state_dict_keys(self):
        keys = set(transformer.Transformer().state_dict())
        wrapped = transformer.apply_ac(transformer.Transformer())
        self.assertTrue(any("_checkpoint_wrapped_module" in n for n, _ in wrapped.named_parameters()))
        self.assertEqual(set(wrapped.state_dict()), keys)
        compiled = transformer.apply_compile(transformer.Transformer())
        self.assertTrue(any("_orig_mod" in n for n, _ in compiled.named_parameters()))
        self.assertTrue(any("_orig_mod" in k for k in compiled.state_dict()), "compile prefixes state-dict keys")

    def test_sharding_plan_names_every_block_linear_through_wrappers(self):
        for prepare in (lambda m: m, transformer.apply_ac, transformer.apply_compile):
            model = prepare(transformer.Transformer())
            plan = model.tp_plan()
            self.assertEqual(len(plan), 7 * model.config.n_layers, sorted(plan))
            for fqn in plan:
                self.assertIsInstance(model.get_submodule(fqn), torch.nn.Linear, fqn)
            self.assertEqual(model.fsdp_units(), list(model.layers.values()))


if __name__ == "__main__":
    absltest.main()
