-- Google Ads cost per day and session source / medium / campaign, as GA4 reports it (advertiserAdCost), for the
-- properties that can serve it (checkCompatibility; see ops.ga4_capabilities).
with source as (
    select * from raw.ga4_ad_cost_daily
),

final as (
    select
        property_id,
        "date" as cost_date,
        session_source as raw_source,
        session_medium as raw_medium,
        session_campaign_name as raw_campaign,
        coalesce(advertiser_ad_cost, 0) as ad_cost,
        coalesce(advertiser_ad_clicks, 0) as ad_clicks,
        coalesce(advertiser_ad_impressions, 0) as ad_impressions,
        upper(trim(currency_code)) as currency
    from source
)

select * from final
