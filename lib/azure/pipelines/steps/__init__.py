"""Scripts that run as command steps inside an Azure ML pipeline job (uploaded as the steps' code).

Only this folder is uploaded, plus opsdeck's table reader (`build.SHIPPED`), which the split
step reads a dataset with. Where they restate a rule of the seam (the holdout split, the gate
decision), a test checks that they agree with it.
"""
