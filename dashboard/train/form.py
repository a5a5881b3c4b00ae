"""The Train page's form, made from TrainConfig's options: every option the command line has, with the same
labels, bounds, choices and help, grouped as the options declare and collapsed beyond the first group.

A few options get a widget of their own because a user thinks of them differently from their stored value
(`CUSTOM`); each still takes its label and help from the option.
"""
from __future__ import annotations

import math
from dataclasses import fields

import streamlit as st
import torch

from fer_core.models import available_devices, list_models
from fer_core.training import GROUPS, Option, options, TrainConfig, value_type


def training_form(prefix: str) -> tuple[dict, int]:
    """Every training option inside the caller's st.form; returns TrainConfig fields and the number of GPUs.

    No input is disabled by another: inside a form a change re-renders nothing until the form is submitted, so a
    dependent input would stay locked."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    chosen: dict = {}
    gpus = 1
    for group in GROUPS:
        with st.expander(group, expanded=group == GROUPS[0]):
            columns = st.columns(3)
            names = [name for name, o in options().items() if o.group == group and o.in_form]
            for i, name in enumerate(names):
                with columns[i % 3]:
                    widget = CUSTOM.get(name, _generic)
                    chosen[name] = widget(name, options()[name], defaults[name], f"{prefix}{name}")
            if group == "Evaluation and hardware":
                gpu_count = torch.cuda.device_count()
                gpus = columns[len(names) % 3].number_input(
                    "GPUs (torchrun DDP)", 1, max(gpu_count, 1), 1, key=f"{prefix}gpus", disabled=gpu_count < 2,
                    help="more than one runs the job under torchrun")
    return chosen, int(gpus)


def _generic(name: str, o: Option, default, key: str):
    kind = value_type(name)
    allowed = o.allowed()
    if kind is bool:
        return st.checkbox(o.label, default, key=key, help=o.help or None)
    if allowed is not None:
        allowed = list(allowed)
        return st.selectbox(o.label, allowed, index=allowed.index(default), key=key, help=o.help or None)
    if kind is str:
        return st.text_input(o.label, default or "", key=key, help=o.help or None).strip() or None
    low = None if o.low is None or o.low_open else kind(o.low)
    high = None if o.high is None or o.high_open else kind(o.high)
    value = st.number_input(o.label, min_value=low, max_value=high, value=default, key=key, help=o.help or None,
                            step=1 if kind is int else _float_step(o, default),
                            format=None if kind is int else "%g", placeholder="empty")
    return None if value is None else kind(value)


def _float_step(o: Option, default) -> float:
    span = (o.high or 0) - (o.low or 0)
    if span >= 10:
        return 1.0
    return 0.01 if not default or default >= 0.01 else 10 ** round(math.log10(default))


def _architecture(name: str, o: Option, default, key: str) -> str:
    models = list_models()
    arch = st.selectbox(o.label, list(models), index=list(models).index(default), key=key,
                        help="\n".join(f"- `{k}`: {v}" for k, v in models.items()))
    st.caption(models[arch])
    return arch


def _batch_size(name: str, o: Option, default, key: str) -> int | str:
    auto = st.checkbox("Batch size: auto (largest that fits the GPU)", key=f"{key}_auto")
    size = st.number_input(o.label, min_value=int(o.low), value=default, key=key, help="unless auto is ticked")
    return "auto" if auto else int(size)


def _pretrained(name: str, o: Option, default, key: str) -> str | None:
    choice = st.selectbox(o.label, ["none", "imagenet", "local file"], key=key,
                          help="torchvision backbones only (vgg16, inception_v3, resnet18)")
    path = st.text_input("State-dict path", key=f"{key}_path", help="with 'local file' only")
    return {"none": None, "imagenet": "imagenet"}.get(choice, path.strip())


def _exclude(name: str, o: Option, default, key: str) -> str | None:
    audit = st.checkbox("Exclude images flagged by the data-health audit", key=key, help=o.help)
    path = st.text_input("…or a file of image ids to leave out", key=f"{key}_path")
    return "audit" if audit else path.strip() or None


def _device(name: str, o: Option, default, key: str) -> str:
    return st.selectbox(o.label, available_devices(), key=key, help=o.help)


CUSTOM = {"arch": _architecture, "batch_size": _batch_size, "pretrained": _pretrained, "exclude": _exclude,
          "device": _device}
