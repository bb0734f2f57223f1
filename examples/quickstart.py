"""Fit, recommend, evaluate and tune on synthetic data (runs offline in seconds)."""

import pandas as pd
from sklearn.model_selection import GridSearchCV, cross_validate

from skrec import Popular, Random
from skrec.datasets import make_interactions
from skrec.model_selection import LeaveLastOut, evaluate, ranking_scorer

X = make_interactions(n_users=1000, n_items=300, random_state=0)
train, test = next(LeaveLastOut().split(X))

model = Popular().fit(X.iloc[train])
print("top-5 for two users:\n", model.recommend(X.user_id.unique()[:2], k=5))
print(
    "a new user, served from a history:",
    model.recommend(
        ["guest"], k=5, history=pd.DataFrame({"user_id": ["guest", "guest"], "item_id": [0, 1]})
    ),
)

for baseline in (Popular(), Random(random_state=0)):
    print(type(baseline).__name__, evaluate(baseline.fit(X.iloc[train]), X.iloc[test]))

print("cross_validate:", cross_validate(Popular(), X, cv=LeaveLastOut())["test_score"])
search = GridSearchCV(
    Popular(), {"by": ["events", "users"]}, cv=LeaveLastOut(), scoring=ranking_scorer("ndcg", k=10)
).fit(X)
print("best:", search.best_params_, round(search.best_score_, 4))
