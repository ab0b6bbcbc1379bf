"""The diversity rule: at most so many offers of one department and of one offer type in the top k,
and one offer of each name or product set (recsys.offers.prepared.same_offer_groups)."""

from __future__ import annotations


def diverse_top(
    order: list[int], prepared, k: int, max_per_department: int, max_per_type: int
) -> tuple[list[int], list[int]]:
    """Greedy top k of ``order`` (eligible offers, best first) under the department and
    offer-type caps: (chosen, fill). When too few offers satisfy the caps, ``fill`` holds the
    skipped offers, best first, that complete the k; they rank after every chosen one.

    ``prepared`` is a :class:`recsys.offers.prepared.PreparedOffers` (its integer codes of
    departments and types).
    """
    dept, blank, types, group = (
        prepared.department_code,
        prepared.department_blank,
        prepared.type_code,
        prepared.group_code,
    )
    per_dept = [0] * prepared.n_departments
    per_type = [0] * prepared.n_types
    full_types = full_depts = 0
    chosen, skipped = [], []
    used: set[int] = set()  # groups of the chosen offers
    skipped_groups: set[int] = set()
    for j in order:
        d, t, g = dept[j], types[j], group[j]
        if g in used:  # the same offer under another id: never twice in one answer
            continue
        if (not blank[j] and per_dept[d] >= max_per_department) or per_type[t] >= max_per_type:
            if len(skipped) < k and g not in skipped_groups:
                skipped.append(j)
                skipped_groups.add(g)
            # once no further offer can be chosen, the skipped ones fill the rest
            if len(skipped) >= k - len(chosen) and (
                full_types == prepared.n_types
                or (full_depts == prepared.n_departments and not prepared.any_blank_department)
            ):
                break
            continue
        chosen.append(j)
        used.add(g)
        if len(chosen) == k:
            break
        per_dept[d] += 1
        per_type[t] += 1
        full_types += per_type[t] == max_per_type
        full_depts += not blank[j] and per_dept[d] == max_per_department
    return chosen, [j for j in skipped if group[j] not in used][: k - len(chosen)]
