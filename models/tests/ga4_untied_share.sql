-- severity: warn
-- Over the last [ga4] untied_window_days days of GA4 data, the share of sessions / purchase revenue that cannot be
-- tied to a CRM contact ((not set), (other), withheld) is above [ga4] untied_sessions_warn_share /
-- untied_revenue_warn_share. Warns only: ROI revenue comes from the CRM, but GA4 touchpoints of contacts are lost
-- (a broken contact-id tag, GA4 thresholding). Shares are exact percentages (half up to 0.01 %).
with params as (
    select
        try_cast(max(value) filter (where name = 'ga4_untied_sessions_warn_share') as decimal(9, 4))
            as sessions_limit,
        try_cast(max(value) filter (where name = 'ga4_untied_revenue_warn_share') as decimal(9, 4))
            as revenue_limit,
        coalesce(try_cast(max(value) filter (where name = 'ga4_untied_window_days') as integer), 30)
            as window_days
    from cfg_params
),

recent as (
    select coverage.*
    from ga4_contact_coverage as coverage
    cross join params
    where coverage.session_date
        > (select max(session_date) from ga4_contact_coverage) - params.window_days
),

totals as (
    select
        min(session_date) as first_day,
        max(session_date) as last_day,
        sum(sessions) as sessions,
        sum(untied_sessions) as untied_sessions,
        sum(revenue) as revenue,
        sum(untied_revenue) as untied_revenue
    from recent
),

shares as (
    select 'sessions' as measure, first_day, last_day, untied_sessions as untied, sessions as total,
        roi_div_money(untied_sessions * 100, sessions) as untied_pct,
        (select sessions_limit from params) * 100 as warn_above_pct
    from totals
    union all
    select 'revenue', first_day, last_day, untied_revenue, revenue,
        roi_div_money(untied_revenue * 100, revenue),
        (select revenue_limit from params) * 100
    from totals
),

final as (
    select * from shares
    where untied_pct > warn_above_pct
)

select * from final
