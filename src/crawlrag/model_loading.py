"""One model is built at a time in this process.

torch's default dtype is process-wide, and transformers changes it while it builds a model with a `dtype`: when
the embedder and the reranker load at once on two threads (as the server does at start), one model's layers can
be created in the other's dtype ("mat1 and mat2 must have the same dtype"). Building them in turn avoids that;
inference is not serialised.
"""

from __future__ import annotations

import threading

MODEL_BUILD_LOCK = threading.Lock()
