"""The dataset layer: FER2013 read from Kaggle's zip, its folder or fer2013.csv (fer2013), archives opened with
limits (archive), the data-health audit (audit) and the test images that leak from Training (leakage)."""
