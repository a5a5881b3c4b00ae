"""The dataset layer: `fer2013.load_dataset` finds FER2013 (sources), decodes Kaggle's zip, its folder or
fer2013.csv (readers), caches the result (cache) and returns a `dataset.FER2013`; archives are opened with
limits (archive); the data-health audit (audit) and the test images that leak from Training (leakage)."""
