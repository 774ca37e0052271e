"""Inference with trained runs.

  predict     restore a run (``Predictor``), predict image files (resize or tiled, TTA), write outputs
  ensemble    multi-trial workdirs: ``load`` gives a run's Predictor, one trial's, or the ``Ensemble`` of all
  slides      whole slides of histopathology runs: tiled over tissue, written as a label TIFF
  inputs      finding and reading inputs (images, DICOM through its modality and VOI LUTs), unique output names
  workdirs    what a path is (a run, a trial, a folder of trials), without loading anything
"""
