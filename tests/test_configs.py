"""Every shipped YAML recipe loads and validates (subfolders included)."""

from pathlib import Path

import pytest

from latentcot.config import load_config
from latentcot.errors import LatentCotError
from latentcot.train.recipe import RunConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LM_RECIPES = sorted((CONFIGS / "lm").rglob("*.yaml"))


def test_there_are_recipes():
    assert len(LM_RECIPES) >= 5


@pytest.mark.parametrize("path", LM_RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_lm_recipe_validates(path):
    cfg = load_config(RunConfig, path)
    cfg.method_options()  # the method section resolves to its typed config
    assert cfg.out_dir.startswith("runs/")


def test_a_bad_method_key_is_named_with_the_closest_one(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: {name: coconut, c_thougth: 2}\n")
    with pytest.raises(LatentCotError, match=r"method: unknown key 'c_thougth' \(did you mean 'c_thought'\?\)"):
        load_config(RunConfig, bad)


def test_an_unknown_method_lists_the_valid_ones():
    with pytest.raises(LatentCotError, match="unknown method 'coconutt'.*coconut"):
        load_config(RunConfig, None, ["method={name: coconutt}"])
