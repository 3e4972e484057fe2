-- One condition of a tagging-plan rule (channel rules and spend-winner rules alike); NULL values never match.
create or replace macro roi_condition_holds(operator, match_values, value) as coalesce(
    case operator
        when 'equals' then value = match_values[1]
        when 'in' then list_contains(match_values, value)
        when 'regex' then regexp_full_match(value, match_values[1])
    end,
    false
);
