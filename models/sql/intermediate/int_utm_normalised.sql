-- Every raw UTM combination seen anywhere (GA4 traffic, ad cost and contact sessions, HubSpot first-page URLs, the
-- spend sheet), normalised and aliased per the tagging plan, with the channel of the first channel rule that matches.
-- One row per raw combination; raw parts are '' when absent so the row can be joined on them.
with first_url_utms as (
    select
        regexp_extract(first_url, '[?&#]utm_source=([^&#]*)', 1) as raw_source,
        regexp_extract(first_url, '[?&#]utm_medium=([^&#]*)', 1) as raw_medium,
        regexp_extract(first_url, '[?&#]utm_campaign=([^&#]*)', 1) as raw_campaign,
        regexp_extract(first_url, '[?&#]utm_term=([^&#]*)', 1) as raw_term,
        regexp_extract(first_url, '[?&#]utm_content=([^&#]*)', 1) as raw_content
    from stg_hubspot__contacts
    where regexp_matches(first_url, '[?&#]utm_(source|medium)=')
),

seen as (
    select raw_source, raw_medium, raw_campaign, raw_term, raw_content from stg_ga4__traffic_daily
    union
    select raw_source, raw_medium, raw_campaign, null, null from stg_ga4__contact_sessions
    where tie_status = 'contact'
    union
    select raw_source, raw_medium, raw_campaign, null, null from stg_ga4__ad_cost_daily
    union
    select raw_source, raw_medium, raw_campaign, raw_term, raw_content from first_url_utms
    union
    select raw_source, raw_medium, raw_campaign, null, null from stg_spend__marketing_spend
),

combinations as (
    select distinct
        coalesce(raw_source, '') as raw_source,
        coalesce(raw_medium, '') as raw_medium,
        coalesce(raw_campaign, '') as raw_campaign,
        coalesce(raw_term, '') as raw_term,
        coalesce(raw_content, '') as raw_content
    from seen
),

normalised as (
    select
        *,
        roi_normalise(raw_source) as source_normalised,
        roi_normalise(raw_medium) as medium_normalised,
        case
            when roi_normalise(raw_campaign) in (select value from cfg_tagging_placeholders where field = 'campaign')
                then null
            else roi_normalise(raw_campaign)
        end as campaign_normalised,
        roi_normalise(raw_term) as term,
        roi_normalise(raw_content) as content
    from combinations
),

aliased as (
    select
        normalised.*,
        coalesce(source_alias.canonical, normalised.source_normalised) as source,
        coalesce(medium_alias.canonical, normalised.medium_normalised) as medium,
        coalesce(campaign_alias.canonical, normalised.campaign_normalised) as campaign
    from normalised
    left join cfg_tagging_aliases as source_alias
        on source_alias.field = 'source' and source_alias.alias = normalised.source_normalised
    left join cfg_tagging_aliases as medium_alias
        on medium_alias.field = 'medium' and medium_alias.alias = normalised.medium_normalised
    left join cfg_tagging_aliases as campaign_alias
        on campaign_alias.field = 'campaign' and campaign_alias.alias = normalised.campaign_normalised
),

condition_checks as (
    select
        aliased.raw_source, aliased.raw_medium, aliased.raw_campaign, aliased.raw_term, aliased.raw_content,
        conditions.rule_order,
        bool_and(roi_condition_holds(conditions.operator, conditions.match_values, checked.value))
            as all_conditions_hold
    from aliased
    cross join cfg_tagging_channel_rule_conditions as conditions
    cross join lateral (
        select case conditions.field
            when 'source' then aliased.source
            when 'medium' then aliased.medium
            else aliased.campaign
        end as value
    ) as checked
    group by all
),

first_matching_rule as (
    select raw_source, raw_medium, raw_campaign, raw_term, raw_content, min(rule_order) as rule_order
    from condition_checks
    where all_conditions_hold
    group by all
),

untagged as (
    select value as channel from cfg_tagging_plan where name = 'untagged_channel'
),

final as (
    select
        aliased.raw_source,
        aliased.raw_medium,
        aliased.raw_campaign,
        aliased.raw_term,
        aliased.raw_content,
        aliased.source,
        aliased.medium,
        aliased.campaign,
        aliased.term,
        aliased.content,
        case
            when aliased.source is null and aliased.medium is null then untagged.channel
            else coalesce(rules.channel, 'unassigned')
        end as channel,
        case
            when aliased.source is null and aliased.medium is null then 'untagged'
            else coalesce(rules.rule_name, 'unmatched')
        end as matched_rule,
        aliased.source in (select value from cfg_tagging_canonical_values where field = 'source')
            as source_is_canonical,
        aliased.medium in (select value from cfg_tagging_canonical_values where field = 'medium')
            as medium_is_canonical,
        coalesce(
            aliased.campaign in (select value from cfg_tagging_canonical_values where field = 'campaign')
            or regexp_full_match(
                aliased.campaign,
                (select nullif(value, '') from cfg_tagging_plan where name = 'campaign_naming')
            ),
            false
        ) as campaign_is_canonical
    from aliased
    cross join untagged
    left join first_matching_rule as matched
        on matched.raw_source = aliased.raw_source
        and matched.raw_medium = aliased.raw_medium
        and matched.raw_campaign = aliased.raw_campaign
        and matched.raw_term = aliased.raw_term
        and matched.raw_content = aliased.raw_content
    left join cfg_tagging_channel_rules as rules on rules.rule_order = matched.rule_order
)

select * from final
