"""Dataset: class counts and imbalance, balancing weights, samples, mean faces, intensities, data health."""
import json

import streamlit as st

from dashboard.shared.data_access import require_dataset
from dashboard.dataset.views import (
    BALANCING_FORMATS,
    NO_MAJORITY,
    agreement_figure,
    crowd_comparison,
    disagreement_samples,
    balancing_table,
    cached_audit,
    counts_chart,
    counts_frame,
    emotion_caption,
    histogram_chart,
    intensity_histograms,
    mean_faces,
    sample_strip,
    thumbnails,
)
from fer_core.data import dataset_report, votes_text
from fer_core.errors import FERError
from fer_core.labels import EMOTIONS


def render() -> None:
    """The Dataset page (pages/dataset.py runs it)."""
    st.title("Dataset")
    dataset = require_dataset()
    source = f"{dataset.source}:{len(dataset)}"
    report = dataset_report(dataset)
    st.caption(f"`{dataset.source}` ({dataset.format}) · {len(dataset):,} images"
               + (" · val carved from train (the source has no PublicTest split)" if dataset.val_from_train else ""))

    st.subheader("Class counts per split")
    cols = st.columns(3)
    for col, (name, split) in zip(cols, report["splits"].items()):
        col.metric(f"{name} images", f"{split['total']:,}", help="largest class / smallest class")
        col.caption(f"imbalance ratio **{split['imbalance_ratio']}x**")
    frame = counts_frame(report)
    st.plotly_chart(counts_chart(frame), width="stretch")

    st.subheader("Class balancing")
    st.caption("What each balancing method in training would apply to each class (training split).")
    train_counts = dataset["train"].class_counts()
    st.table(balancing_table(train_counts).set_index("emotion").style.format(BALANCING_FORMATS))
    with st.expander("Counts and percentages per split"):
        frame["images (share)"] = [f"{n:,} ({p:.1f}%)" for n, p in zip(frame["images"], frame["percent"])]
        st.table(frame.pivot(index="emotion", columns="split", values="images (share)").loc[list(EMOTIONS)])

    st.subheader("Samples")
    if st.button("🔀 Reshuffle"):
        st.session_state["sample_seed"] = st.session_state.get("sample_seed", 0) + 1
    seed = st.session_state.get("sample_seed", 0)
    for label in range(len(EMOTIONS)):
        strip = sample_strip(dataset, label, 12, seed * 7 + label)
        st.markdown(emotion_caption(label), unsafe_allow_html=True)
        if strip is None:
            st.caption("no training images")
        else:
            st.image(strip)

    left, right = st.columns(2)
    with left:
        st.subheader("Mean face per emotion")
        faces = mean_faces(dataset, source)
        st.image([f for f in faces], caption=list(EMOTIONS), width=72)
    with right:
        st.subheader("Pixel intensities per split")
        st.plotly_chart(histogram_chart(intensity_histograms(dataset, source)), width="stretch")

    st.subheader("FER2013's labels and the crowd's")
    st.caption("Microsoft's FER+ asked 10 people to label every FER2013 image. Where their majority and FER2013's label "
               "differ, the label is doubtful: `train --labels ferplus` (the majority) or `ferplus-soft` (the votes) learn "
               "from the crowd instead. Needs FER+'s fer2013new.csv (github.com/microsoft/FERPlus): $FER_PLUS or "
               "data/fer2013new.csv.")
    if st.toggle("Compare FER2013's labels with the crowd's", key="crowd_on"):
        try:
            comparison = crowd_comparison(dataset, source)
        except FERError as exc:
            st.info(str(exc))
        else:
            st.metric("crowd majority agrees with FER2013's label", f"{comparison.agreement():.1%}",
                      help=f"over the {int((comparison.majority >= 0).sum()):,} images where the crowd has a majority")
            st.plotly_chart(agreement_figure(comparison), width="stretch", key="crowd_matrix")
            left, right = st.columns(2)
            given = left.selectbox("FER2013 says", EMOTIONS, key="crowd_given", index=EMOTIONS.index("sad"))
            crowd = right.selectbox("the crowd says", [*EMOTIONS, NO_MAJORITY], key="crowd_says",
                                    index=EMOTIONS.index("neutral"))
            picked = disagreement_samples(comparison, given, crowd, 12)
            if picked:
                st.image(thumbnails(dataset, [comparison.ids[i] for i in picked]),
                         caption=[votes_text(comparison.votes[i]) for i in picked], width=120)
            else:
                st.caption("No image in this cell.")

    st.subheader("Data health")
    st.caption("Exact duplicates (identical pixels), near-duplicates (perceptual hash, confirmed by correlation), "
               "duplicates with different labels, and blank images. Train/test leakage is a known FER2013 problem.")
    if dataset.problems:
        with st.expander(f"{len(dataset.problems)} images or rows skipped or resized while loading"):
            st.code("\n".join(dataset.problems[:500]), language=None)
    if st.toggle("Run the data-health audit", value=st.session_state.get("audit_on", False), key="audit_on"):
        audit = cached_audit(dataset, source)
        summary = audit.summary()
        c = st.columns(5)
        c[0].metric("exact duplicate groups", summary["exact"]["groups"])
        c[1].metric("across splits (leakage)", summary["exact"]["cross_split"] + summary["near"]["cross_split"])
        c[2].metric("duplicates with different labels",
                    summary["exact"]["label_conflicts"] + summary["near"]["label_conflicts"])
        c[3].metric("near-duplicate groups", summary["near"]["groups"])
        c[4].metric("blank images", summary["blank"])
        st.caption(f"{summary['flagged']} images flagged; {summary['excluded']} would be left out of training "
                   f"(PrivateTest is never changed). Audit took {summary['seconds']} s.")
        d1, d2 = st.columns(2)
        d1.download_button("Download the exclusion list (for training)", audit.exclude_text(), "fer2013-exclude.txt",
                           help="Use it with `python -m fer_core train --exclude FILE`, or tick "
                                "'Exclude images flagged by the data-health audit' on the Train page.")
        d2.download_button("Download all findings (JSON)", json.dumps(audit.to_dict(), indent=1), "fer2013-audit.json")
        groups = sorted(audit.exact_groups + audit.near_groups, key=lambda g: (not g.label_conflict, not g.cross_split))
        for group in groups[:12]:
            # one image of each label first, so the thumbnails show the disagreement
            first = list({label: i for i, label in reversed(list(enumerate(group.labels)))}.values())
            order = (first + [i for i in range(len(group.ids)) if i not in first])[:6]
            ids = [group.ids[i] for i in order]
            tag = f" · **labels differ: {', '.join(sorted(set(group.labels)))}**" if group.label_conflict else ""
            st.markdown(f"{len(group.ids)} images: {', '.join(f'`{i}`' for i in ids[:4])}"
                        f"{' …' if len(group.ids) > 4 else ''}{tag}")
            st.image(thumbnails(dataset, ids), caption=[f"{group.splits[i]}: {group.labels[i]}" for i in order], width=96)
        if audit.blank_ids:
            st.markdown("**Blank or near-constant images**")
            st.image(thumbnails(dataset, audit.blank_ids[:12]), caption=audit.blank_ids[:12], width=96)
