-- A campaign's cost comes from one place only (spend sheet or GA4), never both: the spend_winner rule.
select source, medium, campaign, list(distinct cost_source) as cost_sources
from int_cost_daily
group by source, medium, campaign
having count(distinct cost_source) > 1
