"""Training: TrainConfig, the one definition of every option (config), the loop (train), batched augmentation
(augment), mixup/cutmix (mixing), class balancing (balance), distillation (distill) and DDP (distributed)."""
