"""Annotated people for training and PCK: records (PersonRecord), coco and mpii (readers and folder
layouts), synthetic (generated stick-figure people), augment (the paper's augmentation), topdown_dataset
(one person = one sample with its target heatmaps), files (reading their JSON).
"""
