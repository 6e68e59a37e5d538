"""The canonical names of a sample's arrays, one name per thing in every layer.

A *batch* (what ``bench evaluate`` gives a model, what ``bench train`` reads from a built dataset, what
:class:`benchmark.data.PairDataset` yields) is a dict with these keys. Shapes are per sample; batches add a
leading ``B``. ``K`` is the number of reference frames.

=========================  ================  =====  ==========================================================
constant                   key               dtype  shape and values
=========================  ================  =====  ==========================================================
``REFERENCE_COLOUR``       reference_colour  float  (K, 3, H, W) sRGB in [0, 1]
``REFERENCE_SKETCH``       reference_sketch  float  (K, 1, H, W) line art in [0, 1], 0 = line, 1 = paper
``REFERENCE_FIELD``        reference_field   float  (K, 1, H, W) distance field in [0, 1] (``dataprep.field.decode_field``)
``REFERENCE_COMPONENTS``   reference_components int (K, H, W) component labels, 0 = line pixels
``TARGET_COLOUR``          target_colour     float  (3, H, W) ground truth (training and scoring only)
``TARGET_SKETCH``          target_sketch     float  (1, H, W)
``TARGET_FIELD``           target_field      float  (1, H, W)
``TARGET_COMPONENTS``      target_components int    (H, W)
``HINTS``                  hints             float  (4, H, W): RGB hint colours in [0, 1] and a mask (1 = hint)
``CORRESPONDENCES``        correspondences   int    (M, 2) (reference label, target label), first reference
``INTERVAL``               interval          int    () frames from the first reference to the target
=========================  ================  =====  ==========================================================

Equal component ids in two frames of a shot are the same part (ground-truth correspondence where the
dataset has it). These names are those of the dataset's columns where one exists (``components``,
``hints``), prefixed with the frame's role.
"""

REFERENCE_COLOUR = "reference_colour"
REFERENCE_SKETCH = "reference_sketch"
REFERENCE_FIELD = "reference_field"
REFERENCE_COMPONENTS = "reference_components"
TARGET_COLOUR = "target_colour"
TARGET_SKETCH = "target_sketch"
TARGET_FIELD = "target_field"
TARGET_COMPONENTS = "target_components"
HINTS = "hints"
CORRESPONDENCES = "correspondences"
INTERVAL = "interval"

#: Every array key a model may receive (the protocol picks a subset); TARGET_COLOUR is never an input.
MODEL_INPUTS = (REFERENCE_COLOUR, REFERENCE_SKETCH, REFERENCE_FIELD, REFERENCE_COMPONENTS,
                TARGET_SKETCH, TARGET_FIELD, TARGET_COMPONENTS, HINTS)
