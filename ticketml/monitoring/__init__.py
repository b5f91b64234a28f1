"""After promotion: the prediction log, agents' feedback and `ticketml monitor`.

serve / infer / score_spark ──► prediction log ◄── POST /feedback
                                     │
                    ticketml monitor (drift, live accuracy) ──► HTML report, MLflow, exit code
                                     │
                     ticketml data (preprocess.feedback) ──► train ──► promote (feedback gate)
"""
