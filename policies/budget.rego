# METADATA
# title: Budgets
# description: |
#   A team's `monthly_budget` (data.teams) and a key's `monthly_budget` (key metadata) are
#   compared with the month's spend in input.usage. Near a budget (settings
#   budget_downgrade_at, a fraction) the request is downgraded to a cheaper model
#   (settings.cheaper_models); at or past it, denied with 429.
package gateway.budget

import data.gateway.caller
import data.gateway.models

# The spend is read only once a budget applies (the limit is checked first). A missing
# input.usage means no budget applies.
deny contains {"reason": concat("", ["the team ", input.client.team, " monthly budget is spent"]), "status": 429} if {
	limit := caller.team.monthly_budget
	object.get(input.usage, ["team", "spend_month"], 0) >= limit
}

deny contains {"reason": "the key monthly budget is spent", "status": 429} if {
	limit := input.client.metadata.monthly_budget
	is_number(limit)
	object.get(input.usage, ["key", "spend_month"], 0) >= limit
}

nearly_spent if {
	limit := caller.team.monthly_budget
	object.get(input.usage, ["team", "spend_month"], 0) >= limit * data.settings.budget_downgrade_at
}

nearly_spent if {
	limit := input.client.metadata.monthly_budget
	is_number(limit)
	object.get(input.usage, ["key", "spend_month"], 0) >= limit * data.settings.budget_downgrade_at
}

# METADATA
# description: The cheaper model to use instead, when a budget is nearly spent.
downgrade := cheaper if {
	# Most models have no cheaper alternative: then the spend is not even looked at.
	cheaper := data.settings.cheaper_models[models.rewritten]
	nearly_spent
}
