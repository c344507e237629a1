"""A classification head on the mean of the encoder's token states (``model.pooling: mean``).

``AutoModelForSequenceClassification`` classifies from the [CLS] token (through BERT's
pooler). Sentence encoders such as all-MiniLM-L6-v2 were trained to mean-pool instead,
so their [CLS] state and pooler carry little; a head on the mean of the token states
starts from the representation the encoder was trained for. Transformers has no
mean-pooling sequence classifier, hence this small module. It is saved as the encoder's
own folder (``save_pretrained``) plus ``head.safetensors``, so loading needs no custom code
beyond this file and no ``trust_remote_code``.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from pipeline.models.encoders import mean_pool

HEAD_FILE = "head.safetensors"


class MeanPooledClassifier(nn.Module):
    """Encoder, mean pooling over the attention mask, dropout, one linear layer."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float | None = None):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # id2label and label2id live here, as for a HF classifier
        hidden = encoder.config.hidden_size
        p = getattr(encoder.config, "hidden_dropout_prob", 0.1) if dropout is None else dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(hidden, num_labels)
        nn.init.normal_(self.classifier.weight, std=getattr(encoder.config, "initializer_range", 0.02))
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        pooled = mean_pool(self.encoder(**inputs).last_hidden_state, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def save_pretrained(self, folder: str | Path) -> None:
        self.encoder.save_pretrained(folder)
        save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, Path(folder) / HEAD_FILE)

    @classmethod
    def from_encoder_folder(cls, folder: str | Path, encoder: nn.Module) -> MeanPooledClassifier:
        state = load_file(Path(folder) / HEAD_FILE)
        model = cls(encoder, num_labels=state["weight"].shape[0])
        model.classifier.load_state_dict(state)
        return model


def is_mean_pooled(folder: str | Path) -> bool:
    return (Path(folder) / HEAD_FILE).is_file()
