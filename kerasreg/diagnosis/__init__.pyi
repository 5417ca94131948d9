"""Public names of `kerasreg.diagnosis`: diagnose a trained model kerasreg did not build: where dropout feeds BatchNormalization and what it costs.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.diagnosis.batch_norm_audit import (
    BatchNormFinding as BatchNormFinding,
    audit_batch_norm as audit_batch_norm,
)
from kerasreg.diagnosis.gap_parts import GapPart as GapPart, GapParts as GapParts
from kerasreg.diagnosis.inputs import load_model_file as load_model_file
from kerasreg.diagnosis.move import move_dropout as move_dropout
from kerasreg.diagnosis.result import Diagnosis as Diagnosis, diagnose as diagnose
from kerasreg.diagnosis.structure import (
    DropoutPath as DropoutPath,
    Structure as Structure,
    find_structure as find_structure,
)
