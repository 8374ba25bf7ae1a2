"""Partial loads of a transformer checkpoint, as fine-tuning and evaluation jobs do them: the model
alone from a model + optimizer checkpoint, a subset of the keys, a checkpoint that lacks keys
the target has (refused by default, loaded with DefaultLoadPlanner(allow_partial_load=True)), a
model with a new head, and a fine-tuning run with frozen submodules saved without them
(ignore_frozen_params) and restarted. Each loaded model is checked FQN by FQN against an
unsharded model in the state the load must produce; what a load must not touch is checked too.

Spec: PyTorch's e2e/test_fine_tuning.py (frozen pretrained submodule, ignore_frozen_params through
DCP, restart), e2e/test_e2e_save_and_load.py (partial load) and the allow_partial_load planner.
"""

import copy

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from absl.testing import parameterized
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.state_dict import set_model_state_dict
from torch.distributed.checkpoint.state_dict import set_state_dict

from dsd import transformer_checks
from dsd.transformer_checks import SHARDED
from models import transformer
from testing import checkpointing
from testing import parallelisms
from testing.parallelisms import Trained
from testing.known_failures import known_wrong_result
from testing.state_dict_verify import clean_fqn
from testing.state_dict_verify import gather_full

LAYOUTS = (("fsdp2", "fsdp2"), ("fsdp1", "fsdp1"))
SUBSET = ("tok_embeddings.", "layers.0.")  # the tied head (output.weight) comes with the embedding
FROZEN = ("layers.0.", "layers.1.attention.")
TRAINABLE_ONLY = StateDictOptions(ignore_frozen_params=True)


class ClassifierTransformer(transformer.Transformer):
    """The pretrained model plus a new head (e.g. a reward or classification head)."""

    def __init__(self, seed=0, n_classes=4):
        super().__init__(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1000)
            self.score = nn.Linear(self.config.dim, n_classes)


def full_state(model):
    """{fqn: full tensor or value} of a (sharded) model, a copy."""
    return {k: copy.deepcopy(gather_full(v)) for k, v in get_model_state_dict(model).items()}


class PartialLoadTest(transformer_checks.TransformerCase):

    def assert_load_fails_everywhere(self, state_dict, pattern, **kwargs):
        error = None
        try:
            dcp.load(state_dict, **kwargs)
        except (Exception, CheckpointException) as e:  # noqa: BLE001 (CheckpointException is a BaseException)
            error = f"{type(e).__name__}: {e}"
        errors = [None] * self.world_size
        dist.all_gather_object(errors, error)
        self.assertEqual([r for r, e in enumerate(errors) if e is None], [], f"ranks that did not raise: {errors}")
        self.assertRegex(error, pattern)

    def assert_unchanged(self, model, before, fqns, what):
        now = full_state(model)
        for fqn in self.nonempty(sorted(fqns), f"FQNs {what}"):
            self.assert_value_matches(before[fqn], now[fqn], f"{fqn} ({what})")

    @parameterized.named_parameters(*LAYOUTS)
    def test_model_only_from_a_model_and_optimizer_checkpoint(self, layout):
        path = self.checkpoint_dir()
        trained = self.trained(layout)
        checkpointing.save(trained.model, trained.optim, path)

        target = self.model(layout, seed=1)
        msd = get_model_state_dict(target)
        dcp.load({"app": {"model": msd}}, checkpoint_id=path)  # app.optim.* stays on disk
        set_model_state_dict(target, msd)
        self.verify_msd(trained.reference, get_model_state_dict(target), SHARDED, target)
        self.assert_tied(target, "after a model-only load")

    @parameterized.named_parameters(*LAYOUTS)
    def test_subset_of_the_keys(self, layout):
        """Only the embedding (hence the tied head) and the first block; the rest keeps its values."""
        path = self.checkpoint_dir()
        trained = self.trained(layout)
        checkpointing.save(trained.model, trained.optim, path)

        target = self.model(layout, seed=1)
        before = full_state(target)
        subset = {k: v for k, v in get_model_state_dict(target).items() if k.startswith(SUBSET)}
        dcp.load({"app": {"model": subset}}, checkpoint_id=path)
        result = set_model_state_dict(target, subset, options=StateDictOptions(strict=False))
        rest = set(before) - set(subset)
        self.assertEqual(sorted(result.missing_keys), sorted(rest), "missing_keys of a subset load")
        expected = self.model("plain", seed=1)
        expected.load_state_dict({k: v for k, v in trained.reference.state_dict().items() if k in subset}, strict=False)
        self.verify_msd(expected, get_model_state_dict(target), SHARDED, target)
        self.assert_unchanged(target, before, rest - {"output.weight"}, "outside the subset")

    @parameterized.named_parameters(*LAYOUTS)
    def test_checkpoint_missing_keys_needs_allow_partial_load(self, layout):
        """A model-only checkpoint loaded into model + optimizer: refused on every rank by default;
        with allow_partial_load the model loads and the optimizer's state is left as it was."""
        path = self.checkpoint_dir()
        trained = self.trained(layout)
        dcp.save({"model": get_model_state_dict(trained.model)}, checkpoint_id=path)

        target = self.model(layout, seed=1)
        target_optim = transformer.adamw(target.parameters())
        self.train(target, target_optim, self.batches(1, first_seed=30))
        before = full_state(target)
        optim_before = copy.deepcopy(target_optim.state_dict())
        msd, osd = get_state_dict(target, target_optim)
        self.assert_load_fails_everywhere({"model": msd, "optim": osd},
                                          r"Missing key in checkpoint state_dict: optim\.", checkpoint_id=path)
        self.assert_unchanged(target, before, before, "after the refused load")

        msd, osd = get_state_dict(target, target_optim)
        dcp.load({"model": msd, "optim": osd}, checkpoint_id=path,
                 planner=dcp.DefaultLoadPlanner(allow_partial_load=True))
        set_state_dict(target, target_optim, model_state_dict=msd, optim_state_dict=osd)
        self.verify_msd(trained.reference, get_model_state_dict(target), SHARDED, target)
        self.assert_nested_equal(optim_before, target_optim.state_dict(), "the optimizer after a partial load")

    @parameterized.named_parameters(*LAYOUTS)
    def test_fine_tune_into_a_model_with_a_new_head(self, layout):
        path = self.checkpoint_dir()
        pretrained = self.trained(layout)
        checkpointing.save(pretrained.model, pretrained.optim, path)

        target = parallelisms.parallelize(ClassifierTransformer(seed=1), layout, self.device)
        msd = get_model_state_dict(target)
        self.assert_load_fails_everywhere({"app": {"model": copy.copy(msd)}}, r"Missing key in checkpoint state_dict: "
                                          r"app\.model\.score\.", checkpoint_id=path)
        dcp.load({"app": {"model": msd}}, checkpoint_id=path, planner=dcp.DefaultLoadPlanner(allow_partial_load=True))
        set_model_state_dict(target, msd)

        expected = ClassifierTransformer(seed=1).to(self.device)  # its own new head, the pretrained rest
        missing, unexpected = expected.load_state_dict(pretrained.reference.state_dict(), strict=False)
        self.assertEqual((sorted(missing), unexpected), (["score.bias", "score.weight"], []))
        self.verify_msd(expected, get_model_state_dict(target), SHARDED, target)

    @parameterized.named_parameters(*LAYOUTS)
    def test_frozen_submodules_saved_without_them_then_restarted(self, layout):
        """Fine-tuning with the first block and the second one's attention frozen: the checkpoint
        keeps trainable parameters only; a restart loads the pretrained weights, then it."""
        pretrained_path, finetune_path = self.checkpoint_dir("pretrained"), self.checkpoint_dir("finetuned")
        pretrained = self.trained(layout)
        dcp.save({"model": get_model_state_dict(pretrained.model)}, checkpoint_id=pretrained_path)

        def fine_tuning_model(seed):
            model = self.model(layout, seed=seed, freeze=FROZEN)
            msd = get_model_state_dict(model)
            dcp.load({"model": msd}, checkpoint_id=pretrained_path)
            set_model_state_dict(model, msd)
            return model, transformer.adamw(parallelisms.trainable(model))

        batches = self.batches(2, first_seed=10)
        model, optim = fine_tuning_model(seed=1)
        self.train(model, optim, batches)
        reference = self.model("plain", seed=1, freeze=FROZEN)
        reference.load_state_dict(pretrained.reference.state_dict())
        ref_optim = transformer.adamw(parallelisms.trainable(reference))
        self.train(reference, ref_optim, batches)
        self.verify_state(Trained(reference, ref_optim, model, optim), "fine-tuned")

        msd, osd = get_state_dict(model, optim, options=TRAINABLE_ONLY)
        self.verify_msd(reference, msd, TRAINABLE_ONLY, model)
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=finetune_path)
        stored = {k.split(".", 1)[1] for k in dcp.FileSystemReader(finetune_path).read_metadata().state_dict_metadata
                  if k.startswith("model.")}
        trainable = {n for n, p in reference.named_parameters(remove_duplicate=False) if p.requires_grad}
        trainable.add("softcap._extra_state.cap")
        self.assertEqual(sorted(stored), sorted(trainable), "model keys of the fine-tuning checkpoint")

        restarted, restarted_optim = fine_tuning_model(seed=2)
        msd, osd = get_state_dict(restarted, restarted_optim, options=TRAINABLE_ONLY)
        dcp.load({"model": msd, "optim": osd}, checkpoint_id=finetune_path)
        # ignore_frozen_params does not relax strict: the frozen keys are missing on purpose.
        result = set_state_dict(restarted, restarted_optim, model_state_dict=msd, optim_state_dict=osd,
                                options=StateDictOptions(ignore_frozen_params=True, strict=False))
        frozen = {n for n, p in reference.named_parameters() if not p.requires_grad}
        self.assertEqual(sorted(result.missing_keys), sorted(frozen), "missing_keys of the trainable-only load")
        loaded = Trained(reference, ref_optim, restarted, restarted_optim)
        self.verify_state(loaded, "restarted")
        self.continue_training(loaded)
        still_frozen = sorted(clean_fqn(n) for n, p in restarted.named_parameters() if not p.requires_grad)
        self.assertEqual(still_frozen, sorted(frozen), "frozen parameters after the restart")

    @known_wrong_result("get_state_dict(ignore_frozen_params=True) drops a frozen parameter under its first FQN only: "
                        "a frozen embedding tied to the output head is still returned (and saved) as output.weight",
                        wrong=["output.weight"], right=[])
    def test_ignore_frozen_params_with_a_frozen_tied_embedding(self):
        """Returns the frozen FQNs get_state_dict(ignore_frozen_params=True) still returns."""
        trained = self.trained("fsdp2", freeze=("tok_embeddings.",))
        self.assertFalse(trained.model.output.weight.requires_grad, "precondition: the tied head is frozen too")
        msd, osd = get_state_dict(trained.model, trained.optim, options=TRAINABLE_ONLY)
        self.verify_osd(trained.reference, trained.ref_optim, osd, TRAINABLE_ONLY, trained.model)
        trainable = {n for n, p in trained.reference.named_parameters() if p.requires_grad}
        self.assertEqual(sorted(trainable - set(msd)), [], "trainable FQNs missing")
        frozen = {n for n, p in trained.reference.named_parameters(remove_duplicate=False) if not p.requires_grad}
        self.assertEqual(frozen, {"tok_embeddings.weight", "output.weight"})
        return sorted(frozen & set(msd))
