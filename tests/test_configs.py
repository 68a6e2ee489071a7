"""Every shipped YAML recipe loads and validates (subfolders included)."""

from pathlib import Path

import pytest

from latentcot.config import load_config
from latentcot.errors import LatentCotError
from latentcot.train.recipe import RunConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LM_RECIPES = sorted((CONFIGS / "lm").rglob("*.yaml"))
VISUAL_RECIPES = sorted((CONFIGS / "visual").rglob("*.yaml"))


def test_there_are_recipes():
    assert len(LM_RECIPES) >= 5 and len(VISUAL_RECIPES) >= 3


@pytest.mark.parametrize("path", LM_RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_lm_recipe_validates(path):
    cfg = load_config(RunConfig, path)
    cfg.method_options()  # the method section resolves to its typed config
    assert cfg.out_dir.startswith("runs/")


@pytest.mark.parametrize("path", VISUAL_RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_visual_recipe_validates(path):
    from latentcot.visual.train import VisualRunConfig, build_model

    cfg = load_config(VisualRunConfig, path)
    assert cfg.out_dir.startswith("runs/") and build_model(cfg).cfg == cfg.model


def test_a_bad_method_key_is_named_with_the_closest_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: {name: coconut, c_thougth: 2}\n")
    with pytest.raises(LatentCotError, match=r"method: unknown key 'c_thougth' \(did you mean 'c_thought'\?\)"):
        load_config(RunConfig, bad)


def test_an_unknown_method_lists_the_valid_ones():
    with pytest.raises(LatentCotError, match="unknown method 'coconutt'.*coconut"):
        load_config(RunConfig, None, ["method={name: coconutt}"])
