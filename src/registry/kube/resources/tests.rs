use super::*;

#[test]
fn the_crds_name_the_group_and_both_kinds() {
    let yaml = crds_yaml().unwrap();
    assert!(yaml.contains("name: meshclusters.globaldns.io"));
    assert!(yaml.contains("name: exportedservices.globaldns.io"));
    assert!(yaml.contains("exportedFrom"));
}
