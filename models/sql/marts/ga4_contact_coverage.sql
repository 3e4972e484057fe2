-- Per GA4 property and day: the sessions and purchase revenue of all visitors (traffic report) against the part
-- the contact report ties to a CRM contact. The rest is untied, by cause:
--   not_set   no contact id: anonymous visitors, sessions on another device or before the id was set
--   other     GA4 folded the day's long tail of contact ids into one "(other)" row
--   withheld  what the traffic report counts and the contact report does not return: rows GA4 withheld under its
--             privacy thresholds (and any other gap between the two reports); all of it when the contact
--             report was not loaded for the day (property without the custom dimension)
-- untied = sessions - tied. Read by `roi status`, the run summary and the data test ga4_untied_share.
with traffic as (
    select
        property_id,
        traffic_date as session_date,
        sum(sessions) as sessions,
        sum(purchase_revenue) as revenue
    from stg_ga4__traffic_daily
    group by all
),

contact_days as (
    select property_id, report_date as session_date, is_thresholded, has_other_row
    from stg_ga4__report_days
    where report = 'contact_sessions'
),

by_status as (
    select
        property_id,
        session_date,
        sum(sessions) filter (where tie_status = 'contact') as tied_sessions,
        sum(sessions) filter (where tie_status in ('not_set', 'unrecognised')) as not_set_sessions,
        sum(sessions) filter (where tie_status = 'other') as other_sessions,
        sum(purchase_revenue) filter (where tie_status = 'contact') as tied_revenue,
        sum(purchase_revenue) filter (where tie_status in ('not_set', 'unrecognised')) as not_set_revenue,
        sum(purchase_revenue) filter (where tie_status = 'other') as other_revenue
    from stg_ga4__contact_sessions
    group by all
),

counted as (
    select
        traffic.property_id,
        traffic.session_date,
        contact_days.session_date is not null as contact_report_loaded,
        coalesce(contact_days.is_thresholded, false) as is_thresholded,
        coalesce(contact_days.has_other_row, false) as has_other_row,
        traffic.sessions::bigint as sessions,
        -- the contact report is pulled after the traffic report: on days GA4 is still revising it can count a
        -- little more, never more than the day's traffic here
        least(coalesce(by_status.tied_sessions, 0), traffic.sessions)::bigint as tied_sessions,
        coalesce(by_status.not_set_sessions, 0)::bigint as not_set_sessions,
        coalesce(by_status.other_sessions, 0)::bigint as other_sessions,
        traffic.revenue::decimal(38, 2) as revenue,
        least(coalesce(by_status.tied_revenue, 0), traffic.revenue)::decimal(38, 2) as tied_revenue,
        coalesce(by_status.not_set_revenue, 0)::decimal(38, 2) as not_set_revenue,
        coalesce(by_status.other_revenue, 0)::decimal(38, 2) as other_revenue
    from traffic
    left join contact_days
        on contact_days.property_id = traffic.property_id
        and contact_days.session_date = traffic.session_date
    left join by_status
        on by_status.property_id = traffic.property_id
        and by_status.session_date = traffic.session_date
),

final as (
    select
        property_id,
        session_date,
        contact_report_loaded,
        is_thresholded,
        has_other_row,
        sessions,
        tied_sessions,
        not_set_sessions,
        other_sessions,
        greatest(sessions - tied_sessions - not_set_sessions - other_sessions, 0)::bigint as withheld_sessions,
        (sessions - tied_sessions)::bigint as untied_sessions,
        revenue,
        tied_revenue,
        not_set_revenue,
        other_revenue,
        greatest(revenue - tied_revenue - not_set_revenue - other_revenue, 0)::decimal(38, 2) as withheld_revenue,
        (revenue - tied_revenue)::decimal(38, 2) as untied_revenue
    from counted
)

select * from final
