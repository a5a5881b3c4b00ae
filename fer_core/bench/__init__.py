"""`python -m fer_core bench`: speed figures, printed, never asserted (tests check behaviour, not timings).

    python -m fer_core bench [--arch ...]     models: data loading, training and inference images/s per
                                              architecture in fp32 and bf16, evaluation with TTA, agreement,
                                              time to accuracy, and one photo end to end
    python -m fer_core bench live             the Live page's frame processing on a 640x480 clip
    python -m fer_core bench predict          one photo end to end, split into decode, detection, classification

Every figure goes through `timing`; `sample_faces` makes the real face photo and clip they use.
"""
