-- One row per portal, grain, model, month and dimension values in the group roll-up.
select portal, grain, attribution_model, month, channel, source, medium, campaign, count(*) as rows
from int_group_roi_rollup
group by all
having count(*) > 1
