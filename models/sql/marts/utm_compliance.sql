-- Every raw UTM combination seen (GA4 traffic and contact sessions, HubSpot first-page URLs, the spend sheet) with
-- its traffic, its normalised form, the channel rule it matched ('unmatched' when none) and whether it complies
-- with the tagging plan: every part written exactly in its canonical form and a channel rule matched.
-- `issues` lists what to fix at the source (the ad, the newsletter link ...).
with utms as (
    select * from int_utm_normalised
),

traffic as (
    select
        coalesce(raw_source, '') as raw_source, coalesce(raw_medium, '') as raw_medium,
        coalesce(raw_campaign, '') as raw_campaign, coalesce(raw_term, '') as raw_term,
        coalesce(raw_content, '') as raw_content,
        sum(sessions) as sessions,
        min(traffic_date) as first_seen,
        max(traffic_date) as last_seen
    from stg_ga4__traffic_daily
    group by all
),

contact_combinations as (
    select
        contact_id,
        regexp_extract(first_url, '[?&#]utm_source=([^&#]*)', 1) as raw_source,
        regexp_extract(first_url, '[?&#]utm_medium=([^&#]*)', 1) as raw_medium,
        regexp_extract(first_url, '[?&#]utm_campaign=([^&#]*)', 1) as raw_campaign,
        regexp_extract(first_url, '[?&#]utm_term=([^&#]*)', 1) as raw_term,
        regexp_extract(first_url, '[?&#]utm_content=([^&#]*)', 1) as raw_content,
        'hubspot' as seen_in
    from stg_hubspot__contacts
    where regexp_matches(first_url, '[?&#]utm_(source|medium)=')
    union all
    select
        contact_id, coalesce(raw_source, ''), coalesce(raw_medium, ''), coalesce(raw_campaign, ''), '', '', 'ga4'
    from stg_ga4__contact_sessions
    where tie_status = 'contact'
),

contacts as (
    select raw_source, raw_medium, raw_campaign, raw_term, raw_content, count(distinct contact_id) as contacts,
        bool_or(seen_in = 'hubspot') as seen_in_hubspot
    from contact_combinations
    group by all
),

spend as (
    select distinct
        coalesce(raw_source, '') as raw_source, coalesce(raw_medium, '') as raw_medium,
        coalesce(raw_campaign, '') as raw_campaign
    from stg_spend__marketing_spend
),

checked as (
    select
        utms.*,
        coalesce(traffic.sessions, 0)::bigint as sessions,
        coalesce(contacts.contacts, 0)::bigint as contacts,
        traffic.sessions is not null as seen_in_ga4,
        coalesce(contacts.seen_in_hubspot, false) as seen_in_hubspot,
        exists (
            select 1 from spend
            where spend.raw_source = utms.raw_source and spend.raw_medium = utms.raw_medium
              and spend.raw_campaign = utms.raw_campaign and utms.raw_term = '' and utms.raw_content = ''
        ) as seen_in_spend_file,
        traffic.first_seen,
        traffic.last_seen,
        list_filter([
            case when utms.matched_rule = 'unmatched' then 'no channel rule matches' end,
            case when utms.source is not null and not utms.source_is_canonical
                then 'source ' || utms.source || ' is not in the plan' end,
            case when utms.medium is not null and not utms.medium_is_canonical
                then 'medium ' || utms.medium || ' is not in the plan' end,
            case when utms.campaign is not null and not utms.campaign_is_canonical
                then 'campaign ' || utms.campaign || ' is not in the plan' end,
            case when utms.source is not null and utms.raw_source <> utms.source
                then 'source written ''' || utms.raw_source || ''' instead of ''' || utms.source || '''' end,
            case when utms.medium is not null and utms.raw_medium <> utms.medium
                then 'medium written ''' || utms.raw_medium || ''' instead of ''' || utms.medium || '''' end,
            case when utms.campaign is not null and utms.raw_campaign <> utms.campaign
                then 'campaign written ''' || utms.raw_campaign || ''' instead of ''' || utms.campaign || '''' end
        ], lambda issue: issue is not null) as issues
    from utms
    left join traffic
        on traffic.raw_source = utms.raw_source and traffic.raw_medium = utms.raw_medium
        and traffic.raw_campaign = utms.raw_campaign and traffic.raw_term = utms.raw_term
        and traffic.raw_content = utms.raw_content
    left join contacts
        on contacts.raw_source = utms.raw_source and contacts.raw_medium = utms.raw_medium
        and contacts.raw_campaign = utms.raw_campaign and contacts.raw_term = utms.raw_term
        and contacts.raw_content = utms.raw_content
),

final as (
    select
        raw_source,
        raw_medium,
        raw_campaign,
        raw_term,
        raw_content,
        source,
        medium,
        campaign,
        term,
        content,
        channel,
        matched_rule,
        len(issues) = 0 as is_compliant,
        issues,
        sessions,
        contacts,
        seen_in_ga4,
        seen_in_hubspot,
        seen_in_spend_file,
        first_seen,
        last_seen
    from checked
)

select * from final
order by is_compliant, sessions desc, contacts desc, raw_source, raw_medium, raw_campaign
