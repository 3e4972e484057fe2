-- HubSpot contacts as they stand today: archived records and records merged into another one are left out
-- (stg_hubspot__contact_merges maps their ids to the surviving contact).
with source as (
    select * from raw.hubspot_contacts
),

offline_property as (
    select value as property_name from cfg_tagging_plan where name = 'offline_property'
),

final as (
    select
        source.id as contact_id,
        lower(trim(source.email)) as email,
        source.createdate as created_at,
        source.lastmodifieddate as modified_at,
        lower(source.lifecyclestage) as lifecycle_stage,
        source.hs_lifecyclestage_lead_date as lead_at,
        source.hs_lifecyclestage_marketingqualifiedlead_date as mql_at,
        source.hs_lifecyclestage_salesqualifiedlead_date as sql_at,
        source.hs_lifecyclestage_opportunity_date as opportunity_at,
        source.hs_lifecyclestage_customer_date as customer_at,
        upper(trim(source.hs_analytics_source)) as original_source,
        source.hs_analytics_source_data_1 as original_source_data_1,
        source.hs_analytics_source_data_2 as original_source_data_2,
        source.hs_analytics_first_url as first_url,
        source.hs_analytics_first_referrer as first_referrer,
        source.hs_analytics_first_timestamp as first_touch_at,
        upper(trim(source.hs_latest_source)) as latest_source,
        source.hs_latest_source_data_1 as latest_source_data_1,
        source.hs_latest_source_data_2 as latest_source_data_2,
        source.hs_latest_source_timestamp as latest_source_at,
        -- The "how did you hear about us" question: the default property has its own column; another configured
        -- property is read from the record as received.
        case
            when offline_property.property_name = 'how_did_you_hear_about_us' then source.how_did_you_hear_about_us
            else json_extract_string(source._raw, '$.properties.' || offline_property.property_name)
        end as heard_about_us
    from source
    cross join offline_property
    where not coalesce(source.archived, false)
      and source.merged_into_id is null
)

select * from final
