"""A config directory, loaded: every manifest parsed and checked on its own (`manifests.parse`), then
the checks that span files and the workflow graphs (`dag.check_bundle`)."""

from __future__ import annotations

from lighthouse.pipelines.dag import check_bundle
from lighthouse.pipelines.manifests import ConfigBundle, ConfigInvalid, parse


def load(files: dict[str, str]) -> ConfigBundle:
    """The bundle, or ConfigInvalid listing every problem (file, JSON path, rule, message)."""
    bundle = parse(files)
    problems = check_bundle(bundle)
    if problems:
        raise ConfigInvalid("the pipeline config is invalid", {"problems": problems})
    return bundle
