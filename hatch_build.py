"""Hatchling build hook: the wheel carries ``pipelines/`` and ``dashboards/`` as package data.

They stay at the top of the repository (ARCHITECTURE.md); a wheel gets copies under
``astrokit/_data/``, where `astrokit._resources.resource_dir` finds them. Only a real
wheel: an editable install finds them in the clone itself, so nothing is copied into
site-packages, where stale copies would outlive edits.
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: Top-level folders of the repository shipped inside the package (astrokit._resources.RESOURCE_FOLDERS).
RESOURCE_FOLDERS = ("pipelines", "dashboards")


class ResourcesHook(BuildHookInterface):
    """Force-include the notebook folders into ``astrokit/_data/`` of a standard (non-editable) wheel."""

    def initialize(self, version, build_data):
        """Add the folders to the wheel's forced inclusions (``version`` is ``"standard"`` or ``"editable"``)."""
        if self.target_name == "wheel" and version == "standard":
            for name in RESOURCE_FOLDERS:
                build_data["force_include"][name] = f"astrokit/_data/{name}"
