-- touchpoint_id identifies one interaction (paths are ordered by time, then by this id).
select touchpoint_id, count(*) as rows
from int_touchpoints
group by touchpoint_id
having count(*) > 1
