-- GA4 traffic per day and session source / medium / campaign / term / content (raw values as GA4 reports them).
-- Every visitor is here, contacts or not; ad cost comes from its own report (stg_ga4__ad_cost_daily).
with source as (
    select * from raw.ga4_traffic_daily
),

final as (
    select
        property_id,
        "date" as traffic_date,
        session_source as raw_source,
        session_medium as raw_medium,
        session_campaign_name as raw_campaign,
        session_manual_term as raw_term,
        session_manual_ad_content as raw_content,
        session_default_channel_group as ga4_channel_group,
        coalesce(sessions, 0) as sessions,
        coalesce(total_users, 0) as users,
        coalesce(key_events, 0) as key_events,
        coalesce(purchase_revenue, 0) as purchase_revenue,
        upper(trim(currency_code)) as currency
    from source
)

select * from final
