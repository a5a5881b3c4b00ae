"""Train: launch training jobs, watch them live, cancel, resume, delete; hyperparameter studies.

Jobs never run in this process: the registry queues them and a worker process starts each one,
so a refresh, a second tab or a restart of the dashboard neither stops nor duplicates a job.
"""
import streamlit as st

from dashboard.shared.charts import learning_curves_figure
from dashboard.shared.data_access import chosen_path, current_dataset
from dashboard.shared.links import page_link
from dashboard.train.runs import STATE_BADGES, format_duration, run_log_tail, run_metrics, run_progress
from dashboard.train.form import training_form
from fer_core.data import check_dataset
from fer_core.rundir import RunFolder
from fer_core.runs import Registry
from fer_core.training import sweepable, TrainConfig
from fer_core.tuning import PRUNERS, SAMPLERS
from fer_core.errors import FERError
from fer_core.paths import runs_dir


@st.cache_resource
def get_registry(folder: str) -> Registry:
    return Registry(folder)


def check_data(path: str | None) -> None:
    """Refuse a job whose dataset cannot be found or is not FER2013, before it is queued."""
    check_dataset(path)


def new_run_tab(registry: Registry, no_data: str) -> None:
    with st.form("new_run", enter_to_submit=False):  # Enter in a field must not queue a run
        fields, gpus = training_form("new_")
        name = st.text_input("Run name (optional)")
        start_col, estimate_col = st.columns([1, 3])
        with start_col:
            submitted = st.form_submit_button("Start training", type="primary", disabled=bool(no_data),
                                              help=no_data or None)
        with estimate_col:
            estimate = st.form_submit_button("Estimate the time on this machine",
                                             help="times a few training steps of this configuration here (about 5 s)")
    if estimate:
        show_estimate(fields)
    if submitted:
        fields["data"] = fields["data"] or chosen_path()  # the dataset chosen on Home, when the form names none
        try:
            check_data(fields["data"])
            run_id = registry.submit(TrainConfig(**fields, name=name.strip() or None), gpus=gpus)
        except (ValueError, FERError) as exc:
            st.error(f"Not started: {exc}")
        else:
            st.success(f"Queued **{run_id}**. It appears below and updates by itself.")


def show_estimate(fields: dict) -> None:
    """The chosen budget's training time here, from a probe of its training step (not a table from another CPU)."""
    from fer_core.training import expected_training
    try:
        config = TrainConfig(**{**fields, "data": fields.get("data") or chosen_path()})
        config.validate()
        dataset, _ = current_dataset()
        with st.spinner("Timing a few training steps…"):
            kw = {"train_images": len(dataset["train"])} if dataset is not None else {}
            e = expected_training(config, **kw)
    except (ValueError, FERError) as exc:
        st.error(f"Cannot estimate: {exc}")
        return
    st.info(f"About **{e['training_s'] / 60:.0f} min** of training for {config.epochs} epochs "
            f"({e['epoch_s'] / 60:.1f} min each): {config.arch} trains at {e['images_per_s']:.0f} images/s here "
            f"({e['device']}, {e['precision']}, batch {e['batch_size']}), measured just now. PublicTest's evaluation "
            f"after each epoch{', the teacher’s labelling' if config.teacher else ''} and the final evaluation "
            f"come on top.")


def study_tab(no_data: str) -> None:
    st.caption("A study trains one run per trial and learns from them which values to try next (Optuna); a pruner "
               "stops a trial that is clearly losing after a few epochs. Trials are queued here one at a time as "
               "the study asks for them, run like any job, and appear below as `<study>-000`, `-001`…; Compare "
               "shows the study's figures. The objective is the best PublicTest accuracy; PrivateTest never is.")
    with st.form("study", enter_to_submit=False):
        fields, _ = training_form("sweep_")
        space_col, how_col = st.columns([3, 2])
        space = space_col.text_area(
            "Search space (one option per line)", "lr=0.01:0.2:log\nweight_decay=0.00005:0.002:log\n"
            "label_smoothing=0,0.05,0.1,0.2", height=130,
            help="NAME=LOW:HIGH (linear), NAME=LOW:HIGH:log, or NAME=A,B,C (choices). Options that can be tuned: "
                 + ", ".join(sweepable()))
        sampler = how_col.selectbox("Sampler", SAMPLERS, key="study_sampler",
                                    help="tpe learns from the trials so far; random; grid tries every combination "
                                         "of lists of values once")
        pruner = how_col.selectbox("Pruner", PRUNERS, key="study_pruner",
                                   help="median: stop a trial whose PublicTest accuracy is below the median of the "
                                        "earlier trials at the same epoch (once 3 trials have finished, from the "
                                        "2nd epoch on); hyperband and successive halving compare them in rounds; none")
        trials = how_col.number_input("Trials", 1, 1000, 12, key="study_trials")
        name = st.text_input("Study name", key="study_name",
                             help="a study with this name continues (same space and pruner); a new name starts one")
        submitted = st.form_submit_button("Start study", type="primary", disabled=bool(no_data), help=no_data or None)
    if submitted:
        from fer_core.tuning import parse_space, start_study
        try:
            if not name.strip():
                raise ValueError("give the study a name")
            dims = parse_space(space.splitlines())
            fields["data"] = fields["data"] or chosen_path()
            check_data(fields["data"])
            log = start_study(TrainConfig(**fields), dims, sampler, pruner, int(trials), name.strip(), runs_dir())
        except (ValueError, FERError) as exc:
            st.error(f"Not started: {exc}")
        else:
            st.success(f"Study **{name.strip()}** started: {int(trials)} trials, queued one at a time "
                       f"(its log: `{log}`).")



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
    status = RunFolder(run.run_dir).status()[0] if run.run_dir else {}
    progress = run_progress(run, metrics, status)
    evaluating = progress.evaluation is not None
    with st.container(border=True):
        head, actions = st.columns([4, 2])
        sweep = f" · sweep `{run.sweep}`" if run.sweep else ""
        head.markdown(f"**{run.id}** · `{run.arch}` · {STATE_BADGES.get(run.state, run.state)}{sweep}")
        head.progress(progress.evaluation if evaluating else progress.fraction, text=(
            f"epoch {run.epochs_done}/{run.epochs} · elapsed {format_duration(progress.elapsed_s)}"
            + (f" · training done: evaluating the best epoch on PublicTest and PrivateTest, with and without TTA:"
               f" {100 * progress.evaluation:.0f}%"
               if evaluating else f" · ETA {format_duration(progress.eta_s)}" if progress.eta_s is not None else "")
            + (f" · {progress.images_per_s:,.0f} images/s" if progress.images_per_s and not evaluating else "")))
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


def render() -> None:
    """The Train page (pages/train.py runs it)."""
    st.title("Train")
    st.caption("Each job runs as its own process, one at a time per device (set FER_JOBS_PER_DEVICE for more). "
               "Closing or refreshing this page does not stop it.")
    registry = get_registry(str(runs_dir()))
    no_data = ""  # why no job can start: no usable dataset
    try:
        st.caption(f"Dataset: `{check_dataset(chosen_path())}` (chosen on Home; the form's Dataset field can name "
                   f"another)")
    except FERError as exc:
        no_data = f"No usable dataset yet: {exc}"
        st.warning(f"{no_data} Add it on **Home** (upload or path); Start is enabled once it is found.")
    new_tab, study = st.tabs(["New run", "Hyperparameter study"])
    with new_tab:
        new_run_tab(registry, no_data)
    with study:
        study_tab(no_data)
    st.subheader("Runs")
    runs_panel(registry)
