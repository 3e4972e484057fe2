-- The portals of the group: which ones the roll-up includes (and why not), their currency and how it converts, and
-- how fresh their data is (their last run, their last successful run).
with portals as (
    select * from stg_portals__portals
),

rates as (
    select
        portal,
        string_agg(distinct rate_source, ', ' order by rate_source) as rate_sources,
        min(month) as first_month,
        max(month) as last_month
    from int_portal_month_rates
    group by portal
),

final as (
    select
        portals.portal,
        portals.label,
        portals.database,
        portals.included,
        portals.excluded_reason,
        portals.home_currency,
        (select currency from cfg_group_params) as group_currency,
        rates.rate_sources,
        rates.first_month,
        rates.last_month,
        portals.last_run_id,
        portals.last_run_status,
        portals.last_run_finished_at,
        portals.last_success_finished_at
    from portals
    left join rates on rates.portal = portals.portal
)

select * from final
order by portal
