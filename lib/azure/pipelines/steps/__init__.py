"""Scripts that run as command steps inside an Azure ML pipeline job (uploaded as the steps' code).

They import nothing from opsdeck: only this folder is uploaded. Where they restate a rule of the
seam (the holdout split, the gate decision), a test checks that they agree with it.
"""
