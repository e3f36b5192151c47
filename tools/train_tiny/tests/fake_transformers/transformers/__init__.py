"""Stand-in package for smoke_test.sh only (see models/glm4_moe/modeling_glm4_moe.py)."""
from .models.glm4_moe.modeling_glm4_moe import (  # noqa: F401
    Glm4MoeConfig,
    Glm4MoeForCausalLM,
    Glm4MoeModel,
)

__version__ = "fake-for-smoke-test"
