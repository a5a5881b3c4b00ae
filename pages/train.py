"""Train: launch training jobs, watch them live, cancel, resume, delete; hyperparameter sweeps.

Jobs never run in this process: the registry queues them and a worker process starts each one,
so a refresh, a second tab or a restart of the dashboard neither stops nor duplicates a job.
"""
import streamlit as st
import torch

from dashboard.compare_charts import learning_curves_figure
from dashboard.data_access import chosen_path
from dashboard.links import page_link
from dashboard.run_views import STATE_BADGES, format_duration, run_log_tail, run_metrics, run_progress
from fer_core.data.fer2013 import check_dataset
from fer_core.errors import FERError
from fer_core.evaluation.tta import MAX_VIEWS
from fer_core.models.registry import list_models
from fer_core.paths import runs_dir
from fer_core.runs.registry import Registry
from fer_core.training.balance import BALANCE_METHODS
from fer_core.training.config import DEFAULT_LR, MAX_TEACHER_VIEWS, OPTIMIZERS, SCHEDULERS, TrainConfig

# Options a sweep can vary, with how to read the values typed for them.
SWEEPABLE = {"lr": float, "weight_decay": float, "batch_size": int, "epochs": int, "label_smoothing": float,
             "balance": str, "optimizer": str, "scheduler": str, "arch": str, "rotate": float, "zoom": float,
             "shift": float, "erase": float, "seed": int}


@st.cache_resource
def get_registry(folder: str) -> Registry:
    return Registry(folder)


def training_form(prefix: str) -> tuple[dict, int]:
    """Every training option; returns TrainConfig fields and the number of GPUs."""
    d = TrainConfig()
    models = list_models()
    c1, c2, c3 = st.columns(3)
    # No input here is disabled by another: inside a form, a change re-renders nothing until the form is submitted,
    # so a dependent input would stay locked (e.g. the state-dict path after choosing 'local file').
    with c1:
        st.markdown("**Model**")
        arch = st.selectbox("Architecture", list(models), index=list(models).index(d.arch), key=f"{prefix}arch",
                            help="\n".join(f"- `{k}`: {v}" for k, v in models.items()))
        st.caption(models[arch])
        pretrained_choice = st.selectbox("Pretrained weights", ["none", "imagenet", "local file"], key=f"{prefix}pre",
                                         help="torchvision backbones only (vgg16, inception_v3, resnet18)")
        pretrained_path = st.text_input("State-dict path", key=f"{prefix}prepath", help="with 'local file' only")
        epochs = st.number_input("Epochs", 1, 1000, d.epochs, key=f"{prefix}epochs")
        epoch_size = st.number_input("Images per epoch (0 = the whole training set)", 0, 1_000_000, 0, step=1024,
                                     key=f"{prefix}epsize", help="a fresh random subset each epoch: short CPU budgets")
        auto_batch = st.checkbox("Batch size: auto (largest that fits the GPU)", key=f"{prefix}autobs")
        batch = st.number_input("Batch size", 2, 8192, d.batch_size, key=f"{prefix}bs", help="unless auto is ticked")
    with c2:
        st.markdown("**Optimisation**")
        optimizer = st.selectbox("Optimiser", OPTIMIZERS, key=f"{prefix}opt")
        lr = st.number_input("Learning rate (peak for one-cycle)", 1e-6, 5.0, DEFAULT_LR[optimizer],
                             format="%.5f", key=f"{prefix}lr_{optimizer}")
        weight_decay = st.number_input("Weight decay", 0.0, 1.0, d.weight_decay, format="%.5f", key=f"{prefix}wd")
        scheduler = st.selectbox("Scheduler", SCHEDULERS, key=f"{prefix}sched")
        patience = st.number_input("Early stopping patience (epochs, 0 = off)", 0, 1000, d.patience, key=f"{prefix}pat")
        label_smoothing = st.number_input("Label smoothing", 0.0, 0.99, d.label_smoothing, key=f"{prefix}ls")
        ema = st.number_input("Weight averaging (EMA decay, 0 = off)", 0.0, 0.9999, d.ema, format="%.4f",
                              key=f"{prefix}ema", help="evaluate and save a moving average of the weights, e.g. 0.999")
        teacher = st.text_input("Distil from (a .pt checkpoint or models/<ensemble>.json; empty = off)",
                                key=f"{prefix}teacher", help="the student learns the teacher's probabilities")
        distill_weight = st.slider("Share of the teacher's probabilities in the loss", 0.0, 1.0, d.distill_weight,
                                   key=f"{prefix}distw", help="used with a teacher only")
        teacher_views = st.number_input("Augmented views the teacher labels (0 = the clean faces)", 0,
                                        MAX_TEACHER_VIEWS, d.teacher_views, key=f"{prefix}tviews",
                                        help="with a teacher, consistent teaching: the student trains on exactly the "
                                             "views the teacher labelled before training (132 MB of memory per view)")
        teacher_mirror = st.checkbox("The teacher also labels each view's mirror", d.teacher_mirror,
                                     key=f"{prefix}tmirror",
                                     help="with augmented views: each view's answer is averaged with its mirror's and "
                                          "the student trains on either (labelling takes twice as long)")
        balance = st.selectbox("Class balancing", BALANCE_METHODS, key=f"{prefix}bal",
                               help="weighted loss, oversampling or undersampling of the rare classes")
    with c3:
        st.markdown("**Augmentation and data**")
        flip = st.checkbox("Horizontal flip", d.flip, key=f"{prefix}flip")
        rotate = st.slider("Rotation (degrees)", 0.0, 45.0, d.rotate, key=f"{prefix}rot")
        zoom = st.slider("Zoom", 0.0, 0.5, d.zoom, key=f"{prefix}zoom")
        shift = st.slider("Shift (fraction of side)", 0.0, 0.3, d.shift, key=f"{prefix}shift")
        erase = st.slider("Random erasing probability", 0.0, 1.0, d.erase, key=f"{prefix}erase")
        crop = st.selectbox("Random crop", ["off", "44 x 44", "40 x 40"], key=f"{prefix}crop",
                            help="train on random windows of the face; the model then looks at the centre window "
                                 "of each 48x48 face, and TTA's shifted views are shifted windows")
        exclude = st.checkbox("Exclude images flagged by the data-health audit", key=f"{prefix}excl")
        track_test = st.checkbox("Log PrivateTest accuracy every epoch", key=f"{prefix}track",
                                 help="for time-to-accuracy figures; the best epoch is still chosen on PublicTest")
        data = st.text_input("Dataset (empty: $FER_DATA, then data/)", key=f"{prefix}data")
    c4, c5, c6, c7 = st.columns(4)
    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    device = c4.selectbox("Device", devices, key=f"{prefix}dev")
    amp = c4.checkbox("bf16 mixed precision", d.amp, key=f"{prefix}amp",
                      help="where the device runs bf16 natively (CUDA, or a CPU with AVX512-BF16/AMX): about 2x "
                           "faster training; elsewhere, and when off, plain fp32")
    gpu_count = torch.cuda.device_count()
    gpus = c5.number_input("GPUs (torchrun DDP)", 1, max(gpu_count, 1), 1, key=f"{prefix}gpus",
                           disabled=gpu_count < 2, help="more than one runs the job under torchrun")
    seed = c6.number_input("Seed", 0, 2**31 - 1, d.seed, key=f"{prefix}seed")
    tta_views = c7.number_input("TTA views (final evaluation)", 1, MAX_VIEWS, d.tta_views, key=f"{prefix}tta")
    fields = dict(arch=arch, epochs=int(epochs), batch_size="auto" if auto_batch else int(batch), optimizer=optimizer,
                  lr=float(lr), weight_decay=float(weight_decay), scheduler=scheduler, patience=int(patience),
                  label_smoothing=float(label_smoothing), ema=float(ema), amp=amp, teacher=teacher.strip() or None,
                  distill_weight=float(distill_weight), teacher_views=int(teacher_views),
                  teacher_mirror=teacher_mirror, balance=balance, flip=flip,
                  rotate=float(rotate),
                  zoom=float(zoom), shift=float(shift), erase=float(erase),
                  crop=None if crop == "off" else int(crop.split()[0]), exclude="audit" if exclude else None,
                  epoch_size=int(epoch_size) or None, track_test=track_test,
                  data=data.strip() or None, device=device, seed=int(seed), tta_views=int(tta_views),
                  pretrained={"none": None, "imagenet": "imagenet"}.get(pretrained_choice, pretrained_path.strip()))
    return fields, int(gpus)


def check_data(path: str | None) -> None:
    """Refuse a job whose dataset cannot be found or is not FER2013, before it is queued."""
    check_dataset(path)


def new_run_tab(registry: Registry) -> None:
    with st.form("new_run"):
        fields, gpus = training_form("new_")
        name = st.text_input("Run name (optional)")
        submitted = st.form_submit_button("Start training", type="primary")
    if submitted:
        fields["data"] = fields["data"] or chosen_path()  # the dataset chosen on Home, when the form names none
        try:
            check_data(fields["data"])
            run_id = registry.submit(TrainConfig(**fields, name=name.strip() or None), gpus=gpus)
        except (ValueError, FERError) as exc:
            st.error(f"Not started: {exc}")
        else:
            st.success(f"Queued **{run_id}**. It appears below and updates by itself.")


def sweep_tab(registry: Registry) -> None:
    st.caption("Queue one job per combination of the values of one or two options; Compare shows the sweep together.")
    with st.form("sweep"):
        fields, gpus = training_form("sweep_")
        c1, c2 = st.columns(2)
        option1 = c1.selectbox("Vary", list(SWEEPABLE), index=0)
        values1 = c1.text_input("Values (comma-separated)", "0.01, 0.05, 0.1")
        option2 = c2.selectbox("and (optional)", ["—", *SWEEPABLE], index=0)
        values2 = c2.text_input("Values", "", key="values2")
        sweep_name = st.text_input("Sweep name (optional)")
        submitted = st.form_submit_button("Queue sweep", type="primary")
    if submitted:
        try:
            grid = {option1: parse_values(option1, values1)}
            if option2 != "—":
                if option2 == option1:
                    raise ValueError("choose two different options")
                grid[option2] = parse_values(option2, values2)
            fields["data"] = fields["data"] or chosen_path()
            check_data(fields["data"])
            ids = registry.submit_sweep(TrainConfig(**fields), grid, name=sweep_name.strip() or None, gpus=gpus)
        except (ValueError, FERError) as exc:
            st.error(f"Not queued: {exc}")
        else:
            st.success(f"Queued {len(ids)} jobs: {', '.join(ids)}")


def parse_values(option: str, text: str) -> list:
    kind = SWEEPABLE[option]
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"'{text}' are not {kind.__name__} values for {option}") from None
    if not values:
        raise ValueError(f"give at least one value for {option}")
    return values


@st.fragment(run_every=3)
def runs_panel(registry: Registry) -> None:
    runs = registry.list()
    if registry.not_saved:
        st.warning(f"Shown as the run folders say, but {registry.not_saved}: is the disk full or read-only?")
    if not runs:
        st.info("No runs yet: start one above, or with `python -m fer_core train`.")
        return
    states = st.multiselect("Show", list(STATE_BADGES), default=list(STATE_BADGES), key="state_filter")
    shown = [r for r in runs if r.state in states]
    st.caption(f"{len(shown)} of {len(runs)} runs · updates every 3 s")
    for run in shown[:30]:
        run_card(registry, run)


def run_card(registry: Registry, run) -> None:
    metrics = run_metrics(run)
    progress = run_progress(run, metrics)
    with st.container(border=True):
        head, actions = st.columns([4, 2])
        sweep = f" · sweep `{run.sweep}`" if run.sweep else ""
        head.markdown(f"**{run.id}** · `{run.arch}` · {STATE_BADGES.get(run.state, run.state)}{sweep}")
        head.progress(progress.fraction, text=(
            f"epoch {run.epochs_done}/{run.epochs} · elapsed {format_duration(progress.elapsed_s)}"
            + (f" · ETA {format_duration(progress.eta_s)}" if progress.eta_s is not None else "")
            + (f" · {progress.images_per_s:,.0f} images/s" if progress.images_per_s else "")))
        cols = head.columns(3)
        cols[0].metric("best val accuracy", "–" if run.best_val_accuracy is None else f"{100 * run.best_val_accuracy:.2f}%")
        cols[1].metric("test accuracy", "–" if run.test_accuracy is None else f"{100 * run.test_accuracy:.2f}%")
        cols[2].metric("test accuracy (TTA)", "–" if run.test_accuracy_tta is None else f"{100 * run.test_accuracy_tta:.2f}%")
        if run.error:
            head.error(run.error)
        action_buttons(registry, run, actions)
        if run.state == "finished":
            page_link("compare", "Compare this run with others", "📊", head)
        with st.expander("Curves and log", expanded=run.state == "running"):
            if metrics:
                st.plotly_chart(learning_curves_figure({run.id: metrics}), width="stretch", key=f"curves_{run.id}")
            st.code(run_log_tail(run) or "(no log yet)", language=None)


def action_buttons(registry: Registry, run, area) -> None:
    key = run.id
    try:
        if run.state in ("queued", "running") and area.button("Cancel", key=f"cancel_{key}"):
            registry.cancel(run.id)
            st.toast(f"Cancelling {run.id}: it stops after the current batch and keeps its checkpoint")
        resumable = run.state in ("interrupted", "cancelled", "failed") and run.run_dir  # a damaged row is not
        if resumable and area.button("Resume", key=f"resume_{key}"):
            registry.resume(run.id)
            st.toast(f"{run.id} queued to continue from its last checkpoint")
        if run.state not in ("queued", "running"):
            if st.session_state.get("confirm_delete") == run.id:
                area.warning("Delete this run and all its files?")
                yes, no = area.columns(2)
                if yes.button("Delete", key=f"yes_{key}", type="primary"):
                    registry.delete(run.id)
                    st.session_state.pop("confirm_delete")
                    st.rerun(scope="fragment")
                if no.button("Keep", key=f"no_{key}"):
                    st.session_state.pop("confirm_delete")
                    st.rerun(scope="fragment")
            elif area.button("Delete…", key=f"delete_{key}"):
                st.session_state["confirm_delete"] = run.id
                st.rerun(scope="fragment")
    except FERError as exc:
        area.error(str(exc))


st.title("Train")
st.caption("Each job runs as its own process, one at a time per device (set FER_JOBS_PER_DEVICE for more). "
           "Closing or refreshing this page does not stop it.")
registry = get_registry(str(runs_dir()))
try:
    check_dataset(chosen_path())
except FERError as exc:
    st.warning(f"No usable dataset yet, so a job started now would fail: {exc} Add it on **Home** (upload or "
               f"path), or give its path in the form below.")
new_tab, sweep = st.tabs(["New run", "Hyperparameter sweep"])
with new_tab:
    new_run_tab(registry)
with sweep:
    sweep_tab(registry)
st.subheader("Runs")
runs_panel(registry)
