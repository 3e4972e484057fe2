-- Each ROI mart has one row per model, month (NULL = all time) and dimension values.
select 'roi_by_channel' as mart, attribution_model, month, channel, null as source, null as medium,
    null as campaign, count(*) as rows
from roi_by_channel group by all having count(*) > 1
union all
select 'roi_by_source', attribution_model, month, channel, source, null, null, count(*)
from roi_by_source group by all having count(*) > 1
union all
select 'roi_by_campaign', attribution_model, month, channel, source, medium, campaign, count(*)
from roi_by_campaign group by all having count(*) > 1
