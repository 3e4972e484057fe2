-- A campaign's cost of a day comes from one place only (spend sheet or GA4), never both: the spend_winner rule
-- (the spend sheet stands in for GA4 only on days GA4 served no cost).
select cost_date, source, medium, campaign, list(distinct cost_source) as cost_sources
from int_cost_daily
group by cost_date, source, medium, campaign
having count(distinct cost_source) > 1
